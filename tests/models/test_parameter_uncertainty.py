"""Parameter uncertainty in the CLV intervals (a Laplace approximation: ``CLVModel.add_parameter_uncertainty``
and ``clv.draws``): the parameter sets spread as the standard errors say, and each group of draws is
simulated with its own set."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.clv.uncertainty import simulate_value


@pytest.mark.parametrize("purchase_model", ["bgnbd", "pareto"])
def test_parameter_sets_spread_as_the_standard_errors(cdnow_weeks: pd.DataFrame, purchase_model: str) -> None:
    model = CLVModel(purchase_model).fit(cdnow_weeks).add_parameter_uncertainty(sets=400, seed=1)
    assert model.parameter_sets_ is not None
    estimate = model.purchases_.params_
    logged = np.log([[s[name] for name in estimate.index] for s in model.parameter_sets_])
    relative_se = model.summary["se(coef)"].iloc[: len(estimate)].to_numpy() / estimate.to_numpy()
    # delta method: sd(log theta) = se(theta) / theta; 400 draws pin a standard deviation within ~7%
    np.testing.assert_allclose(logged.std(axis=0), relative_se, rtol=0.2)
    np.testing.assert_allclose(logged.mean(axis=0), np.log(estimate), atol=4 * relative_se.max() / 20)


def test_each_group_of_draws_follows_its_parameter_set(cdnow_weeks: pd.DataFrame) -> None:
    """Two far-apart parameter sets: the first half of each customer's draws averages the expected
    purchases under the first set, the second half under the second (P(alive) and posteriors included)."""
    model = CLVModel("bgnbd").fit(cdnow_weeks)
    estimate = dict(model.purchases_.params_)
    sets = [estimate | {"r": estimate["r"] * 2}, estimate | {"a": estimate["a"] * 3}]
    model.parameter_sets_ = sets
    purchases, _ = simulate_value(model, cdnow_weeks, 39.0, draws=2000, seed=4)
    for params, half in zip(sets, (purchases[:, :1000], purchases[:, 1000:]), strict=True):
        at = copy.deepcopy(model)
        at.parameter_sets_ = None
        at.purchases_.params_ = pd.Series(params)
        expected = at.expected_purchases(cdnow_weeks, 39.0).sum()
        assert half.mean(axis=1).sum() == pytest.approx(expected, rel=0.02)
    fixed = copy.deepcopy(model)
    fixed.parameter_sets_ = None
    assert fixed.expected_purchases(cdnow_weeks, 39.0).sum() < 0.85 * purchases[:, :1000].mean(axis=1).sum()


def test_parameter_sets_are_seeded_kept_and_cleared(cdnow_weeks: pd.DataFrame) -> None:
    model = CLVModel("bgnbd").fit(cdnow_weeks)
    assert model.parameter_sets_ is None
    first = model.add_parameter_uncertainty(sets=5, seed=2).parameter_sets_
    assert (
        first == CLVModel("bgnbd").fit(cdnow_weeks).add_parameter_uncertainty(sets=5, seed=2).parameter_sets_
    )
    assert pickle.loads(pickle.dumps(model)).parameter_sets_ == first  # the served model keeps them
    assert model.add_parameter_uncertainty(sets=0).parameter_sets_ is None
    model.add_parameter_uncertainty(sets=5)
    assert model.fit(cdnow_weeks).parameter_sets_ is None  # a refit's estimates have other errors
