"""Customer lifetime value: a BTYD purchase process (BG/NBD, Pareto/NBD or MBG/NBD) plus Gamma-Gamma spend.

``CLVModel`` wraps the archived ``lifetimes`` fitters behind our own scikit-learn-style class so the
engine can be swapped later. Three things make it fast at scale without changing any number:

- Fitting uses each distinct (frequency, recency, T) pattern once, weighted by how many customers share
  it: the log-likelihood is the same sum, so the parameters are the plain fit's.
- BG/NBD and Gamma-Gamma are fitted with closed-form gradients (``likelihoods``) instead of lifetimes'
  autograd: same objective, optimiser and optimum, a fraction of the cost per step.
- Predictions and CLV need the costly hypergeometric term once per distinct (frequency, T) pair and
  month (``expectations``; Pareto/NBD: once per distinct pattern and month), and CLV sums the months
  with fixed weights instead of two lifetimes calls per month.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.fitters import BaseFitter
from lifetimes.utils import ConvergenceError as LifetimesConvergenceError
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from crm_analytics.features.rfm import BTYD_COLUMNS
from crm_analytics.models.clv import likelihoods
from crm_analytics.models.clv.expectations import (
    SPLIT_MODELS,
    SplitExpectation,
    distinct_rows,
    split_expectation,
)
from crm_analytics.models.clv.standard_errors import (
    log_parameter_covariance,
    parameter_table,
    total_negative_log_likelihood,
)
from crm_analytics.models.inputs import NOT_FITTED

log = logging.getLogger(__name__)

PurchaseModel = Literal["bgnbd", "pareto", "mbgnbd"]
PURCHASE_FITTERS: dict[str, type[BaseFitter]] = {
    "bgnbd": BetaGeoFitter,
    "pareto": ParetoNBDFitter,
    "mbgnbd": ModifiedBetaGeoFitter,
}
# lifetimes starts Pareto/NBD from a random point (the global numpy RNG): start from that
# distribution's centre instead, so the same data always gives the same fit
FIT_OPTIONS: dict[str, dict[str, object]] = {"pareto": {"initial_params": np.ones(4)}}
SUMMARY_COLUMNS = tuple(BTYD_COLUMNS)  # frequency, recency, T, monetary_value (features.rfm)
PATTERN = list(BTYD_COLUMNS[:3])  # what a customer's purchase model sees: frequency, recency, T
PARAMETER_SETS = 20  # Laplace draws of the purchase parameters that the interval simulation spreads over
QUADRATURE_NODES = 64  # Pareto/NBD's P(no purchase): the integrand is smooth; 64 agree with 256 to 1e-12
PERIODS_PER_MONTH = {"days": 30.0, "weeks": 4.345}  # lifetimes' factors for freq "D" and "W"


class ConvergenceError(RuntimeError):
    """A fit did not converge, even after a retry with a penalizer."""


@dataclass(frozen=True)
class SpendExclusions:
    """Repeat customers left out of the Gamma-Gamma fit because their mean spend was not positive."""

    count: int
    share: float


def check_summary(summary: pd.DataFrame, columns: tuple[str, ...] = SUMMARY_COLUMNS) -> None:
    """Raise ValueError naming the first missing column or the first rule a column breaks."""
    for column in columns:
        if column not in summary.columns:
            raise ValueError(f"missing column '{column}'")
    if len(summary) == 0:
        raise ValueError("summary: no customers")
    if (summary["frequency"] < 0).any() or (summary["frequency"] % 1 != 0).any():
        raise ValueError("frequency: must be non-negative whole numbers")
    if (summary["recency"] > summary["T"]).any():
        raise ValueError("recency: may not exceed T")


class CLVModel(BaseEstimator):
    """BTYD purchases + Gamma-Gamma spend. Parameters are learned by ``fit``; results end in ``_``.

    Parameters
    ----------
    purchase_model: "bgnbd" (default), "pareto" or "mbgnbd".
    penalizer: L2 penalty on the purchase model's parameters (0 = the literature's plain MLE).
    spend_penalizer: L2 penalty on the Gamma-Gamma parameters.
    retry_penalizer: penalty for one retry when a fit does not converge (logged, kept in ``retried_``).
    time_unit: the unit of recency and T, "days" or "weeks"; sets the month length for CLV.
    tol: the optimiser's tolerance (lifetimes' default). The Pareto/NBD likelihood is flat near its
        optimum: fits that differ only in row order agree to ~1e-4 at 1e-7 and to ~1e-7 at 1e-11.
    """

    def __init__(
        self,
        purchase_model: PurchaseModel = "bgnbd",
        penalizer: float = 0.0,
        spend_penalizer: float = 0.0,
        retry_penalizer: float = 0.001,
        time_unit: Literal["days", "weeks"] = "weeks",
        tol: float = 1e-7,
    ) -> None:
        self.purchase_model = purchase_model
        self.penalizer = penalizer
        self.spend_penalizer = spend_penalizer
        self.retry_penalizer = retry_penalizer
        self.time_unit = time_unit
        self.tol = tol

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"CLVModel(purchase_model={self.purchase_model!r}, time_unit={self.time_unit!r}, {state})"

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "purchases_")

    @property
    def is_fitted(self) -> bool:
        return self.__sklearn_is_fitted__()

    def fit(self, summary: pd.DataFrame) -> CLVModel:
        """Fit on a BTYD summary (frequency, recency, T, monetary_value), one row per customer."""
        if self.purchase_model not in PURCHASE_FITTERS:
            raise ValueError(f"purchase_model: expected one of {', '.join(PURCHASE_FITTERS)}")
        check_summary(summary)
        patterns = compress(summary)
        self.retried_: list[str] = []
        self.parameter_sets_: list[dict[str, float]] | None = None  # add_parameter_uncertainty
        self.purchases_ = self._fit_with_retry(
            "purchases", lambda penalty: self._fit_purchases(patterns, penalty), self.penalizer
        )
        repeat = summary[summary["frequency"] > 0]
        positive = repeat[repeat["monetary_value"] > 0]
        self.spend_excluded_ = SpendExclusions(
            len(repeat) - len(positive), 1 - len(positive) / max(len(repeat), 1)
        )
        if self.spend_excluded_.count:
            log.info(
                "Gamma-Gamma: left out %d repeat customers with mean spend <= 0", self.spend_excluded_.count
            )
        self.spend_ = self._fit_with_retry(
            "spend",
            lambda penalty: likelihoods.fit_gamma_gamma(
                positive["frequency"].to_numpy(), positive["monetary_value"].to_numpy(), penalty, self.tol
            ),
            self.spend_penalizer,
        )
        self.patterns_ = patterns
        self.n_customers_ = len(summary)
        self.n_patterns_ = len(patterns)
        return self

    def _fit_purchases(self, patterns: pd.DataFrame, penalty: float) -> BaseFitter:
        """The purchase model on the distinct patterns, each weighted by its number of customers."""
        columns = [patterns[c].to_numpy() for c in PATTERN]
        weights = patterns["customers"].to_numpy()
        if self.purchase_model == "bgnbd":
            return likelihoods.fit_bgnbd(*columns, weights, penalty, self.tol)
        return PURCHASE_FITTERS[self.purchase_model](penalizer_coef=penalty).fit(
            *columns, weights=weights, tol=self.tol, **FIT_OPTIONS.get(self.purchase_model, {})
        )

    def _fit_with_retry(self, part: str, fit: object, penalty: float) -> BaseFitter:
        try:
            return _quietly(fit, penalty)
        except LifetimesConvergenceError:
            retry = max(self.retry_penalizer, penalty * 10)
            log.warning("%s fit did not converge; retrying with penalizer %.4g", part, retry)
            self.retried_.append(f"{part}: penalizer {retry:g}")
            try:
                return _quietly(fit, retry)
            except LifetimesConvergenceError as exc:
                raise ConvergenceError(
                    f"the {part} model did not converge, even with penalizer {retry:g}. Try: a larger "
                    "penalizer, time in weeks instead of days, a longer calibration period, or removing "
                    "customers with implausible frequencies"
                ) from exc

    @property
    def params_(self) -> dict[str, float]:
        """All fitted parameters by name (purchase model first, then r/alpha... p, q, v)."""
        check_is_fitted(self, msg=NOT_FITTED)
        purchases = {str(k): float(v) for k, v in self.purchases_.params_.items()}
        spend = {f"spend_{k}": float(v) for k, v in self.spend_.params_.items()}
        return purchases | spend

    @property
    def summary(self) -> pd.DataFrame:
        """Parameters with standard errors and 95% intervals, as lifetimes reports them (the purchase
        model's from the Hessian of its log-likelihood: ``standard_errors``, also for Pareto/NBD)."""
        check_is_fitted(self, msg=NOT_FITTED)
        purchases = parameter_table(self.purchase_model, self.purchases_.params_, self.patterns_, PATTERN)
        spend = self.spend_.summary.rename(index=lambda k: f"spend_{k}")
        return pd.concat([purchases, spend])

    def add_parameter_uncertainty(self, sets: int = PARAMETER_SETS, seed: int = 0) -> CLVModel:
        """Draw ``sets`` purchase-model parameter sets from the Laplace approximation (log-parameters
        normal around the estimate, covariance the inverse Hessian: ``standard_errors``) for the
        simulation of intervals to carry (``clv.draws``); ``sets=0`` removes them."""
        check_is_fitted(self, msg=NOT_FITTED)
        if sets == 0:
            self.parameter_sets_ = None
            return self
        params = self.purchases_.params_
        covariance = log_parameter_covariance(self.purchase_model, params, self.patterns_, PATTERN)
        if not np.isfinite(covariance).all() or np.any(np.linalg.eigvalsh(covariance) <= 0):
            raise ConvergenceError("the log-likelihood's Hessian is not positive definite at the estimate")
        draws = np.random.default_rng(seed).multivariate_normal(
            np.log(params.to_numpy(float)), covariance, sets
        )
        self.parameter_sets_ = [dict(zip(params.index, np.exp(row), strict=True)) for row in draws]
        return self

    def log_likelihood(self) -> float:
        """The purchase model's log-likelihood at the fitted parameters, summed over the fitted customers
        (lifetimes' own likelihoods: ``standard_errors.total_negative_log_likelihood``)."""
        check_is_fitted(self, msg=NOT_FITTED)
        minus = total_negative_log_likelihood(self.purchase_model, self.patterns_, PATTERN)
        return -minus(np.log(self.purchases_.params_.to_numpy(float)))

    def expected_purchases(self, summary: pd.DataFrame, periods: float) -> np.ndarray:
        """Expected purchases in the next ``periods`` (time units), per customer."""
        check_is_fitted(self, msg=NOT_FITTED)
        check_summary(summary, tuple(PATTERN))
        if self.purchase_model in SPLIT_MODELS:
            return self._split(summary, np.array([periods])).cumulative()[:, 0]
        patterns, index = unique_patterns(summary)
        return self._pattern_cumulative(patterns, np.array([periods]))[index, 0]

    def probability_alive(self, summary: pd.DataFrame) -> np.ndarray:
        """P(the customer is still active) at the end of the calibration period."""
        check_is_fitted(self, msg=NOT_FITTED)
        check_summary(summary, tuple(PATTERN))
        patterns, index = unique_patterns(summary)
        alive = self.purchases_.conditional_probability_alive(
            patterns["frequency"].to_numpy(), patterns["recency"].to_numpy(), patterns["T"].to_numpy()
        )
        return np.asarray(alive, dtype=float)[index]

    def probability_no_purchase(self, summary: pd.DataFrame, periods: float) -> np.ndarray:
        """P(no purchase in the next ``periods``): dead, or alive and quiet.

        Alive customers buy at a rate whose posterior is Gamma(r + x, alpha + T), so over a stretch m
        P(quiet) = g(m) = ((alpha+T)/(alpha+T+m))^(r+x). BG/NBD and MBG/NBD customers drop out only right
        after a purchase: P(quiet | alive) = g(t). A Pareto/NBD customer's remaining lifetime is Lomax
        (dropout rate ~ Gamma(s, beta + T)), with survival S and density f: P(quiet | alive) =
        S(t) g(t) + integral over [0, t] of f(u) g(u) du, by Gauss-Legendre quadrature.
        """
        check_is_fitted(self, msg=NOT_FITTED)
        patterns, index = unique_patterns(summary)
        params = self.purchases_.params_
        r, alpha = params["r"], params["alpha"]
        x, T = (patterns[c].to_numpy(float)[:, None] for c in ("frequency", "T"))
        alive = self.probability_alive(patterns)[:, None]
        if self.purchase_model == "pareto":
            nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
            u = np.append((nodes + 1) * periods / 2, periods)  # the nodes on [0, t], then t itself
            quiet_for = ((alpha + T) / (alpha + T + u)) ** (r + x)
            survival = ((params["beta"] + T) / (params["beta"] + T + u)) ** params["s"]
            density = params["s"] / (params["beta"] + T + u) * survival
            integral = (density * quiet_for)[:, :-1] @ weights * periods / 2
            quiet = survival[:, -1] * quiet_for[:, -1] + integral
        else:
            quiet = (((alpha + T) / (alpha + T + periods)) ** (r + x))[:, 0]
        return (1 - alive[:, 0] + alive[:, 0] * quiet)[index]

    def expected_spend(self, summary: pd.DataFrame) -> np.ndarray:
        """Gamma-Gamma's expected mean spend per purchase (the population mean for non-repeaters)."""
        check_is_fitted(self, msg=NOT_FITTED)
        check_summary(summary, ("frequency", "monetary_value"))
        return np.asarray(
            self.spend_.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"]),
            dtype=float,
        )

    def clv(self, summary: pd.DataFrame, months: int = 12, discount_rate: float = 0.01) -> np.ndarray:
        """Discounted value of the next ``months`` months: lifetimes' customer_lifetime_value, vectorised.

        Month k contributes spend x (E[purchases to k] - E[purchases to k-1]) / (1 + discount_rate)^k.
        """
        check_is_fitted(self, msg=NOT_FITTED)
        if months < 1:
            raise ValueError(f"months: must be at least 1, got {months}")
        check_summary(summary)
        times = np.arange(1, months + 1) * PERIODS_PER_MONTH[self.time_unit]
        discount = (1 + discount_rate) ** -np.arange(1, months + 1)
        # month k's purchases are E[Y(t_k)] - E[Y(t_(k-1))]; nothing is expected by t = 0
        month_weights = discount - np.append(discount[1:], 0.0)  # sum_k d_k (E_k - E_k-1) = sum_k w_k E_k
        if self.purchase_model in SPLIT_MODELS:
            purchases_value = self._split(summary, times).weighted(month_weights)
        else:
            patterns, index = unique_patterns(summary)
            purchases_value = (self._pattern_cumulative(patterns, times) @ month_weights)[index]
        return purchases_value * self.expected_spend(summary)

    def _split(self, summary: pd.DataFrame, times: np.ndarray) -> SplitExpectation:
        """BG/NBD and MBG/NBD: the hypergeometric part once per distinct (frequency, T) pair."""
        return split_expectation(
            self.purchase_model,
            {str(k): float(v) for k, v in self.purchases_.params_.items()},
            *(summary[c].to_numpy(float) for c in PATTERN),
            times,
        )

    def _pattern_cumulative(self, patterns: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Expected purchases up to each time, (patterns x times), one lifetimes call per time."""
        f, r, T = (patterns[c].to_numpy() for c in PATTERN)
        predict = self.purchases_.conditional_expected_number_of_purchases_up_to_time
        return np.column_stack([np.asarray(predict(t, f, r, T), dtype=float) for t in times])


def _quietly(fit: object, penalty: float) -> BaseFitter:
    """Run a lifetimes fit with its stdout captured: it prints the optimiser's state when a fit fails,
    which would corrupt ``--json`` output. What it printed goes to the debug log."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            return fit(penalty)  # type: ignore[operator]
    finally:
        if captured.getvalue():
            log.debug("lifetimes said: %s", captured.getvalue())


def compress(summary: pd.DataFrame) -> pd.DataFrame:
    """Distinct (frequency, recency, T) patterns with the number of customers sharing each."""
    return summary.groupby(PATTERN, sort=True).size().rename("customers").reset_index()


def unique_patterns(summary: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct patterns and, per customer, the index of its pattern."""
    codes, values = distinct_rows([summary[c].to_numpy() for c in PATTERN])
    return pd.DataFrame(dict(zip(PATTERN, values, strict=True))), codes
