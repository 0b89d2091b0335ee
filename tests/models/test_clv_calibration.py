"""Interval calibration (``clv.calibration``): the randomized PIT is uniform when the data come from the
model, shows a model that under-predicts spend, coverage is reported per calibration-frequency group, and
levels fitted on a validation window correct a miscalibrated interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crm_analytics.models.clv.calibration import coverage_by_group, holdout_pit, pit_histogram
from crm_analytics.models.clv.interval_levels import GROUPS, IntervalLevels, calibration_frequency_group
from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.clv.uncertainty import holdout_distribution, simulate_value

HORIZON_WEEKS = 39.0
LEVEL = 0.9


@pytest.fixture(scope="module")
def model(cdnow_weeks: pd.DataFrame) -> CLVModel:
    return CLVModel("bgnbd").fit(cdnow_weeks)


@pytest.fixture(scope="module")
def from_the_model(model: CLVModel, cdnow_weeks: pd.DataFrame) -> np.ndarray:
    """One holdout spend per CDNOW_sample customer drawn from the fitted model itself: calibrated by
    construction (its own seed, apart from the draws the PIT is read from)."""
    return simulate_value(model, cdnow_weeks, HORIZON_WEEKS, draws=100, seed=12345)[1][:, 0]


def test_groups_are_known_at_the_cutoff() -> None:
    groups = calibration_frequency_group(np.array([0, 1, 2, 3, 40]))
    assert list(groups) == ["0", "1-2", "1-2", "3+", "3+"]


def test_the_pit_of_data_from_the_model_is_uniform_in_every_group(
    model: CLVModel, cdnow_weeks: pd.DataFrame, from_the_model: np.ndarray
) -> None:
    pit = holdout_pit(model, cdnow_weeks, HORIZON_WEEKS, from_the_model, draws=1000, seed=0)
    groups = calibration_frequency_group(cdnow_weeks["frequency"])
    assert stats.kstest(pit, "uniform").pvalue > 0.01
    coverage = coverage_by_group(pit, groups, LEVEL)
    assert set(coverage) == {*GROUPS, "all"}
    assert sum(coverage[g]["customers"] for g in GROUPS) == len(cdnow_weeks)
    for group, row in coverage.items():
        error = 3 * np.sqrt(LEVEL * (1 - LEVEL) / row["customers"])  # three binomial standard errors
        assert row["coverage"] == pytest.approx(LEVEL, abs=error), group
    # the inclusive interval over-covers: most of the zero-purchase spend sits on the atom at 0
    frame = holdout_distribution(model, cdnow_weeks, HORIZON_WEEKS, level=LEVEL, seed=0)
    inclusive = (from_the_model >= frame["spend_low"]) & (from_the_model <= frame["spend_high"])
    assert inclusive[groups == "0"].mean() > coverage["0"]["coverage"] + 0.03


def test_the_pit_shows_spend_the_model_under_predicts(
    model: CLVModel, cdnow_weeks: pd.DataFrame, from_the_model: np.ndarray
) -> None:
    pit = holdout_pit(model, cdnow_weeks, HORIZON_WEEKS, from_the_model * 2.0, draws=1000, seed=0)
    coverage = coverage_by_group(pit, calibration_frequency_group(cdnow_weeks["frequency"]), LEVEL)
    assert coverage["all"]["above"] > 0.12  # twice the spend: well over the nominal 5% above
    assert coverage["all"]["coverage"] < 0.84
    assert coverage["all"]["below"] < 0.05


def test_the_pit_is_reproducible_and_checked(model: CLVModel, cdnow_weeks: pd.DataFrame) -> None:
    spend = np.zeros(len(cdnow_weeks))
    first = holdout_pit(model, cdnow_weeks, HORIZON_WEEKS, spend, draws=200, seed=3)
    again = holdout_pit(model, cdnow_weeks, HORIZON_WEEKS, spend, draws=200, seed=3, chunk_customers=1000)
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match="observed"):
        holdout_pit(model, cdnow_weeks, HORIZON_WEEKS, spend[:-1])


def test_levels_fitted_on_a_validation_window_correct_a_miscalibrated_interval() -> None:
    """PITs that pile up at the top (spend above the model's) in every group: levels fitted on one
    sample cover 90% of another from the same distribution; the nominal levels do not."""
    rng = np.random.default_rng(0)
    groups = np.array(GROUPS, dtype=object)[rng.integers(0, 3, 30_000)]
    skew = {"0": 0.6, "1-2": 0.8, "3+": 1.0}  # u ** a with a < 1: too many PITs near 1
    exponent = np.array([skew[g] for g in groups])
    validation, holdout = rng.random(30_000) ** exponent, rng.random(30_000) ** exponent
    fitted = IntervalLevels.fit(validation, groups, LEVEL)
    assert fitted.by_group["3+"] == pytest.approx((0.05, 0.95), abs=0.01)
    assert fitted.by_group["0"][1] > 0.96
    coverage = coverage_by_group(holdout, groups, LEVEL, fitted)
    for group in GROUPS:
        assert coverage[group]["recalibrated_coverage"] == pytest.approx(LEVEL, abs=0.01), group
    assert coverage["0"]["above"] > 0.07
    assert coverage["0"]["below"] < 0.01


def test_a_small_group_takes_the_overall_levels() -> None:
    pit = np.linspace(0, 1, 1000) ** 0.5
    groups = np.array(["0"] * 950 + ["3+"] * 50, dtype=object)
    fitted = IntervalLevels.fit(pit, groups, LEVEL)
    assert fitted.by_group["3+"] == pytest.approx(tuple(np.quantile(pit, [0.05, 0.95])))
    assert fitted.by_group["1-2"] == fitted.by_group["3+"]  # no customers at all


def test_the_histogram_draws_every_group() -> None:
    rng = np.random.default_rng(1)
    groups = np.array(GROUPS, dtype=object)[rng.integers(0, 3, 3000)]
    figure = pit_histogram(rng.random(3000), groups, LEVEL)
    ax = figure.axes[0]
    assert [line.get_label() for line in ax.lines[:3]] == [f"{g} ({(groups == g).sum():,})" for g in GROUPS]
    assert "inside the central 90%" in ax.get_title(loc="left")
