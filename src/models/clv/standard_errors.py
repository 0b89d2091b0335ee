"""Standard errors of a purchase model's parameters from the Hessian of its log-likelihood.

lifetimes reports them for BG/NBD and MBG/NBD but not for Pareto/NBD: its fitter stores no Hessian (the
likelihood's Gauss hypergeometric function has no autograd derivative), so ``summary`` fails. Here the
Hessian of the total negative log-likelihood over the weighted patterns, with respect to the
log-parameters where the optimiser works, is taken numerically by SciPy (``scipy.differentiate``,
adaptive finite differences with error control); the delta method turns it into standard errors of
the parameters, as lifetimes does. A test checks that this gives lifetimes' own BG/NBD standard errors.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from scipy.differentiate import hessian


def total_negative_log_likelihood(
    purchase_model: str, patterns: pd.DataFrame, columns: list[str]
) -> Callable[[np.ndarray], float]:
    """log_params -> minus the log-likelihood summed over the weighted patterns."""
    x, t_x, T = (patterns[c].to_numpy(float) for c in columns)
    w = patterns["customers"].to_numpy(float)
    if purchase_model == "pareto":
        return lambda u: -float(np.sum(w * ParetoNBDFitter._conditional_log_likelihood(np.exp(u), x, t_x, T)))
    fitter = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter}[purchase_model]
    return lambda u: float(fitter._negative_log_likelihood(u, x, t_x, T, w, 0.0)) * float(w.sum())


def log_parameter_covariance(
    purchase_model: str, params: pd.Series, patterns: pd.DataFrame, columns: list[str]
) -> np.ndarray:
    """The covariance of the log-parameters: the inverse Hessian of the negative log-likelihood there
    (the Laplace approximation of their sampling distribution)."""
    f = total_negative_log_likelihood(purchase_model, patterns, columns)
    estimate = params.to_numpy(float)

    def batched(u: np.ndarray) -> np.ndarray:  # scipy evaluates many points at once: u is (4, ...)
        flat = u.reshape(len(estimate), -1)
        return np.array([f(flat[:, k]) for k in range(flat.shape[1])]).reshape(u.shape[1:])

    return np.asarray(np.linalg.inv(hessian(batched, np.log(estimate)).ddf))


def parameter_table(
    purchase_model: str, params: pd.Series, patterns: pd.DataFrame, columns: list[str]
) -> pd.DataFrame:
    """coef, se(coef) and the 95% bounds, as lifetimes' ``summary`` lays them out."""
    estimate = params.to_numpy(float)
    covariance = log_parameter_covariance(purchase_model, params, patterns, columns)
    se = estimate * np.sqrt(np.diag(covariance))  # delta method: d exp(u) = exp(u) du
    return pd.DataFrame(
        {
            "coef": estimate,
            "se(coef)": se,
            "lower 95% bound": estimate - 1.96 * se,
            "upper 95% bound": estimate + 1.96 * se,
        },
        index=params.index,
    )
