"""Closed-form BG/NBD and Gamma-Gamma fits against lifetimes' autograd ones: objective, gradient, optimum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from autograd import value_and_grad
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import ConvergenceError

from crm_analytics.models.clv.likelihoods import (
    bgnbd_objective,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_objective,
    minimise,
)
from crm_analytics.models.clv.model import compress

POINTS = [np.full(4, 0.1), np.array([-1.4, 1.5, -0.2, 0.9]), np.array([0.3, -2.0, 1.0, 3.0])]


@pytest.fixture(scope="module")
def patterns(cdnow_weeks: pd.DataFrame) -> pd.DataFrame:
    return compress(cdnow_weeks)


@pytest.mark.parametrize("penalizer", [0.0, 0.05])
@pytest.mark.parametrize("point", range(len(POINTS)))
def test_bgnbd_objective_and_gradient_equal_lifetimes(
    patterns: pd.DataFrame, penalizer: float, point: int
) -> None:
    f, r, T, w = (patterns[c].to_numpy() for c in ("frequency", "recency", "T", "customers"))
    ours = bgnbd_objective(f, r, T, w, penalizer)(POINTS[point])
    theirs = value_and_grad(BetaGeoFitter._negative_log_likelihood)(
        POINTS[point], f.astype(int), r, T, w, penalizer
    )
    assert ours[0] == pytest.approx(theirs[0], rel=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("penalizer", [0.0, 0.05])
def test_gamma_gamma_objective_and_gradient_equal_lifetimes(
    cdnow_weeks: pd.DataFrame, penalizer: float
) -> None:
    repeat = cdnow_weeks[cdnow_weeks["frequency"] > 0]
    x, m = repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy()
    weights = np.ones(len(x))
    for point in (np.full(3, 0.1), np.log([6.25, 3.74, 15.44]), np.array([2.0, -1.0, 0.5])):
        ours = gamma_gamma_objective(x, m, weights, penalizer)(point)
        theirs = value_and_grad(GammaGammaFitter._negative_log_likelihood)(point, x, m, weights, penalizer)
        assert ours[0] == pytest.approx(theirs[0], rel=1e-12)
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-14)


def test_fits_reach_lifetimes_optimum_and_standard_errors(
    cdnow_weeks: pd.DataFrame, patterns: pd.DataFrame
) -> None:
    f, r, T, w = (patterns[c].to_numpy() for c in ("frequency", "recency", "T", "customers"))
    ours = fit_bgnbd(f, r, T, w)
    plain = BetaGeoFitter().fit(cdnow_weeks["frequency"], cdnow_weeks["recency"], cdnow_weeks["T"])
    np.testing.assert_allclose(ours.params_, plain.params_, rtol=1e-6)
    np.testing.assert_allclose(ours.standard_errors_, plain.standard_errors_, rtol=1e-4)
    # lifetimes' predictions work on the result as on its own fit
    np.testing.assert_allclose(
        ours.conditional_probability_alive(f, r, T), plain.conditional_probability_alive(f, r, T), rtol=1e-5
    )

    repeat = cdnow_weeks[cdnow_weeks["frequency"] > 0]
    spend = fit_gamma_gamma(repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy())
    plain_spend = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    np.testing.assert_allclose(spend.params_, plain_spend.params_, rtol=1e-6)
    np.testing.assert_allclose(spend.standard_errors_, plain_spend.standard_errors_, rtol=1e-4)


def test_precision_loss_at_a_vanishing_gradient_is_convergence(cdnow_weeks: pd.DataFrame) -> None:
    """At tol 1e-11 BFGS ends with 'precision loss' at the optimum (lifetimes calls that a failure)."""
    repeat = cdnow_weeks[cdnow_weeks["frequency"] > 0]
    x, m = repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy()
    objective = gamma_gamma_objective(x, m, np.ones(len(x)))
    log_params, _, _ = minimise(objective, 3, tol=1e-11)
    np.testing.assert_allclose(np.exp(log_params), [6.25, 3.74, 15.44], rtol=2e-3)

    def no_optimum(at: np.ndarray) -> tuple[float, np.ndarray]:  # a slope that never flattens
        return float(at.sum()), np.ones_like(at)

    with pytest.raises(ConvergenceError, match="the optimiser stopped"):
        minimise(no_optimum, 3, tol=1e-7)
