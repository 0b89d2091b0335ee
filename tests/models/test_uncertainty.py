"""CLV uncertainty by simulation: it reproduces the models' expectations, and its intervals and
probabilities are calibrated on CDNOW_sample's real 39-week holdout."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from crm_analytics.datasets.cdnow import write_cdnow
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.models.clv import uncertainty
from crm_analytics.models.clv.interval_levels import IntervalLevels, calibration_frequency_group
from crm_analytics.models.clv.model import PERIODS_PER_MONTH, CLVModel
from crm_analytics.models.clv.uncertainty import holdout_distribution, simulate_value, value_distribution
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load

CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_DAYS = 273  # 39 weeks, to 1998-06-30
HOLDOUT_WEEKS = 39
DRAWS = 2000
MODELS = ("bgnbd", "mbgnbd", "pareto")
THRESHOLDS = (0, 50, 100, 200)


@pytest.fixture(scope="module")
def fitted(cdnow_weeks: pd.DataFrame) -> dict[str, CLVModel]:
    return {name: CLVModel(name).fit(cdnow_weeks) for name in MODELS}


@pytest.fixture(scope="module")
def holdout(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """CDNOW_sample's feature table at the calibration end, with the 39-week holdout's actual spend and
    purchase days, built from the raw transactions by the project's pipeline."""
    folder: Path = tmp_path_factory.mktemp("cdnow_uncertainty")
    write_cdnow("sample", folder / "raw")
    with Warehouse(f"duckdb:///{folder / 'w.duckdb'}") as warehouse:
        load(warehouse, folder / "raw")
        config = FeatureConfig(as_of=CALIBRATION_END, horizon_days=HOLDOUT_DAYS, time_unit="weeks")
        return feature_table(warehouse.ibis, config).execute().set_index("customer_id").sort_index()


def z_scores(draws: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """(simulated mean - expected) in Monte Carlo standard errors; the error is floored at
    sqrt(expected / draws), a count's, for customers whose few draws happen to be all equal."""
    error = np.maximum(draws.std(axis=1), np.sqrt(expected)) / np.sqrt(draws.shape[1])
    return (draws.mean(axis=1) - expected) / error


def assert_matches(draws: np.ndarray, expected: np.ndarray) -> None:
    """The total within 1%, and each customer within Monte Carlo error of the exact expectation."""
    assert draws.mean(axis=1).sum() == pytest.approx(expected.sum(), rel=0.01)
    z = z_scores(draws, expected)
    assert 0.6 < np.mean(z**2) < 1.6, np.mean(z**2)  # ~1 when unbiased; a bias of 1 error makes it ~2
    assert np.abs(z).max() < 6


@pytest.mark.parametrize("purchase_model", MODELS)
def test_simulated_purchases_have_the_models_expectation(
    cdnow_weeks: pd.DataFrame, fitted: dict[str, CLVModel], purchase_model: str
) -> None:
    model = fitted[purchase_model]
    purchases, _ = simulate_value(model, cdnow_weeks, HOLDOUT_WEEKS, draws=DRAWS)
    assert_matches(purchases.astype(float), model.expected_purchases(cdnow_weeks, HOLDOUT_WEEKS))
    # the closed form (Pareto/NBD: by quadrature over the remaining lifetime) against the simulation
    quiet = model.probability_no_purchase(cdnow_weeks, HOLDOUT_WEEKS)
    simulated = (purchases == 0).mean(axis=1)
    assert simulated.sum() == pytest.approx(quiet.sum(), rel=0.01)
    z = (simulated - quiet) / np.maximum(np.sqrt(quiet * (1 - quiet) / DRAWS), 1 / DRAWS)
    assert 0.6 < np.mean(z**2) < 1.6
    assert np.abs(z).max() < 6


@pytest.mark.parametrize("purchase_model", MODELS)
def test_mean_value_is_the_models_clv(
    cdnow_weeks: pd.DataFrame, fitted: dict[str, CLVModel], purchase_model: str
) -> None:
    model = fitted[purchase_model]
    frame = value_distribution(model, cdnow_weeks, months=12, discount_rate=0.01, draws=DRAWS, seed=3)
    _, value = simulate_value(
        model, cdnow_weeks, 12 * PERIODS_PER_MONTH["weeks"], discount_rate=0.01, draws=DRAWS, seed=3
    )
    np.testing.assert_allclose(frame["clv_mean"], value.mean(axis=1), rtol=1e-12)  # the same draws
    assert_matches(value, model.clv(cdnow_weeks, months=12, discount_rate=0.01))


def test_intervals_and_probabilities_are_consistent(
    cdnow_weeks: pd.DataFrame, fitted: dict[str, CLVModel]
) -> None:
    model = fitted["bgnbd"]
    narrow, wide = (
        value_distribution(model, cdnow_weeks, level=level, thresholds=(0, 50, 100, 400), draws=1000)
        for level in (0.8, 0.95)
    )
    assert list(wide.columns) == [
        "clv_mean",
        "clv_low",
        "clv_high",
        "p_no_purchase",
        "p_clv_above_0",
        "p_clv_above_50",
        "p_clv_above_100",
        "p_clv_above_400",
    ]
    assert wide.index.equals(cdnow_weeks.index)
    assert (wide["clv_low"] <= narrow["clv_low"]).all()
    assert (narrow["clv_high"] <= wide["clv_high"]).all()
    assert (wide["clv_high"] > narrow["clv_high"]).mean() > 0.2
    # the mean lies in the interval, unless no purchase is so likely that the whole interval is 0
    inside = wide["clv_mean"].between(wide["clv_low"], wide["clv_high"])
    assert (inside | ((wide["p_no_purchase"] > 0.975) & (wide["clv_high"] == 0))).all()
    assert inside.mean() > 0.98
    above = wide[["p_clv_above_0", "p_clv_above_50", "p_clv_above_100", "p_clv_above_400"]].to_numpy()
    assert (np.diff(above, axis=1) <= 0).all()
    assert (above[:, 0] > above[:, -1]).mean() > 0.2
    # spend is positive, so any purchase means value above 0
    np.testing.assert_allclose(wide["p_clv_above_0"], 1 - wide["p_no_purchase"], atol=1e-12)
    assert ((wide["p_no_purchase"] > 0) & (wide["p_no_purchase"] <= 1)).all()


def test_intervals_take_each_groups_recalibrated_levels(
    cdnow_weeks: pd.DataFrame, fitted: dict[str, CLVModel]
) -> None:
    """The served interval (``levels`` stored by training): each row's quantiles of its own draws at its
    calibration-frequency group's levels; nominal levels give the plain equal-tailed interval."""
    model, summary = fitted["bgnbd"], cdnow_weeks.head(3000)
    levels = IntervalLevels(0.9, {"0": (0.02, 0.93), "1-2": (0.05, 0.95), "3+": (0.08, 0.97)}, True)
    served = value_distribution(model, summary, levels=levels, draws=1000)
    _, value = simulate_value(model, summary, 12 * PERIODS_PER_MONTH["weeks"], 0.01, draws=1000)
    groups = calibration_frequency_group(summary["frequency"])
    assert set(groups) == {"0", "1-2", "3+"}
    for group, (low, high) in levels.by_group.items():
        rows = groups == group
        np.testing.assert_allclose(served["clv_low"][rows], np.quantile(value[rows], low, axis=1))
        np.testing.assert_allclose(served["clv_high"][rows], np.quantile(value[rows], high, axis=1))
    nominal = value_distribution(model, summary, levels=IntervalLevels.nominal(0.9), draws=1000)
    pd.testing.assert_frame_equal(nominal, value_distribution(model, summary, level=0.9, draws=1000))
    assert not np.allclose(nominal["clv_high"], served["clv_high"])


def test_results_depend_on_the_seed_only(
    cdnow_weeks: pd.DataFrame, fitted: dict[str, CLVModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fitted["mbgnbd"]
    calls: list[tuple[int, int]] = []
    small = value_distribution(
        model,
        cdnow_weeks,
        thresholds=(100,),
        draws=500,
        chunk_customers=500,
        progress=lambda *c: calls.append(c),
    )
    large = value_distribution(model, cdnow_weeks, thresholds=(100,), draws=500, chunk_customers=100_000)
    pd.testing.assert_frame_equal(small, large)  # chunks change memory use, never results
    for threads in (1, 3):  # nor do threads: each block has its own stream
        monkeypatch.setattr(uncertainty, "simulation_threads", lambda threads=threads: threads)
        alone = value_distribution(model, cdnow_weeks, thresholds=(100,), draws=500, chunk_customers=500)
        pd.testing.assert_frame_equal(alone, large)
    monkeypatch.undo()
    assert calls == [(1000, 2357), (2000, 2357), (2357, 2357)]  # chunks are whole blocks of 1,000
    other = value_distribution(model, cdnow_weeks, thresholds=(100,), draws=500, seed=1)
    assert not np.allclose(other["clv_mean"], large["clv_mean"])
    first, second = (simulate_value(model, cdnow_weeks.head(50), 20.0, draws=100, seed=9) for _ in range(2))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


# What the holdout checks ask of the intervals and probabilities: met with margin by the method, missed
# by a broken one (see test_the_holdout_checks_reject_broken_methods).
PIT_COVERAGE_TOLERANCE = 0.035
SHARE_TOLERANCE = 0.05
MAX_CALIBRATION_ERROR = 0.075
MIN_BRIER_SKILL = 0.16


def randomized_pit(draws: np.ndarray, actual: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """F(y-) + U (F(y) - F(y-)) under each customer's simulated distribution: uniform if calibrated,
    counts and spend's point mass at 0 included."""
    below = (draws < actual[:, None]).mean(axis=1)
    at_most = (draws <= actual[:, None]).mean(axis=1)
    return below + rng.random(len(actual)) * (at_most - below)


def holdout_checks(model: CLVModel, summary: pd.DataFrame, actual: pd.DataFrame) -> dict[str, float]:
    """Coverage and calibration of the holdout predictions against what customers actually did."""
    spend, days = actual["holdout_spend"].to_numpy(), actual["holdout_purchase_days"].to_numpy()
    purchases, value = simulate_value(model, summary, HOLDOUT_WEEKS, draws=DRAWS, seed=5)
    rng = np.random.default_rng(0)
    checks: dict[str, float] = {}
    for name, draws, observed in (("spend", value, spend), ("purchases", purchases, days)):
        pit = randomized_pit(draws, observed, rng)
        for level in (0.8, 0.9):
            checks[f"{name}_pit_coverage_{level:.0%}"] = float(np.mean(np.abs(pit - 0.5) <= level / 2))
    for level in (0.8, 0.9):  # the frame's intervals, inclusive: at least `level` for counts and spend at 0
        frame = holdout_distribution(
            model, summary, HOLDOUT_WEEKS, level=level, thresholds=THRESHOLDS, draws=DRAWS, seed=5
        )
        for name, observed in (("spend", spend), ("purchases", days)):
            covered = (frame[f"{name}_low"] <= observed) & (observed <= frame[f"{name}_high"])
            checks[f"{name}_interval_coverage_{level:.0%}"] = float(covered.mean())
    for threshold in THRESHOLDS:
        predicted, happened = frame[f"p_spend_above_{threshold}"].to_numpy(), spend > threshold
        deciles = np.array_split(np.argsort(predicted, kind="stable"), 10)
        checks[f"p_above_{threshold}_predicted"] = float(predicted.mean())
        checks[f"p_above_{threshold}_actual"] = float(happened.mean())
        checks[f"p_above_{threshold}_calibration_error"] = float(
            np.mean([abs(predicted[d].mean() - happened[d].mean()) for d in deciles])
        )
        checks[f"p_above_{threshold}_brier_skill"] = float(
            1 - np.mean((predicted - happened) ** 2) / happened.var()
        )
    checks["purchases_predicted"] = float(frame["purchases_mean"].sum())
    checks["purchases_actual"] = float(days.sum())
    return checks


def failures(checks: dict[str, float]) -> list[str]:
    """The checks outside their bounds."""
    failed = []
    for level in (0.8, 0.9):
        for name in ("spend", "purchases"):
            pit, interval = f"{name}_pit_coverage_{level:.0%}", f"{name}_interval_coverage_{level:.0%}"
            failed += [pit] if abs(checks[pit] - level) > PIT_COVERAGE_TOLERANCE else []
            failed += [interval] if checks[interval] < level - 0.02 else []
    for threshold in THRESHOLDS:
        key = f"p_above_{threshold}"
        if abs(checks[f"{key}_predicted"] - checks[f"{key}_actual"]) > SHARE_TOLERANCE:
            failed.append(f"{key}_predicted")
        if checks[f"{key}_calibration_error"] > MAX_CALIBRATION_ERROR:
            failed.append(f"{key}_calibration_error")
    if checks["p_above_0_brier_skill"] < MIN_BRIER_SKILL:
        failed.append("p_above_0_brier_skill")
    return failed


def show(label: str, checks: dict[str, float]) -> None:
    print(f"\n{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in checks.items()))


def test_holdout_intervals_and_probabilities_are_calibrated(holdout: pd.DataFrame) -> None:
    """Fit on the calibration period, predict the 39-week holdout, compare with what customers did.

    The randomized PIT makes coverage exact for counts and spend's point mass at 0; the frame's inclusive
    intervals of such variables cover more than their level. P(spend > t) is checked overall, by decile of
    the prediction, and for skill over the base rate (Brier)."""
    summary = holdout[["frequency", "recency", "T", "monetary_value"]]
    checks = holdout_checks(CLVModel().fit(summary), summary, holdout)
    show("BG/NBD", checks)
    assert failures(checks) == []


@pytest.mark.slow  # whole runs: left to `make test`, out of the fast loop
def test_the_holdout_checks_reject_broken_methods(
    holdout: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = holdout[["frequency", "recency", "T", "monetary_value"]]
    model = CLVModel().fit(summary)
    prior = summary.assign(frequency=0.0, recency=0.0, T=0.0, monetary_value=0.0)
    prior_checks = holdout_checks(model, prior, holdout)  # every customer drawn from the population prior
    show("prior instead of posterior", prior_checks)

    def ignore_dropout(patterns: pd.DataFrame) -> np.ndarray:
        return np.ones(len(patterns))

    monkeypatch.setattr(model, "probability_alive", ignore_dropout)
    alive_checks = holdout_checks(model, summary, holdout)  # everyone alive at the calibration end
    show("ignoring dropout", alive_checks)
    assert {"p_above_0_predicted", "p_above_0_calibration_error", "p_above_0_brier_skill"} <= set(
        failures(prior_checks)
    )
    assert {"p_above_0_predicted", "p_above_0_calibration_error", "p_above_0_brier_skill"} <= set(
        failures(alive_checks)
    )


def test_inputs_are_checked(cdnow_weeks: pd.DataFrame, fitted: dict[str, CLVModel]) -> None:
    model = fitted["bgnbd"]
    with pytest.raises(NotFittedError, match="not fitted"):
        value_distribution(CLVModel(), cdnow_weeks)
    with pytest.raises(ValueError, match="draws: must be at least 100"):
        value_distribution(model, cdnow_weeks, draws=99)
    for level in (0.0, 1.0, 90):
        with pytest.raises(ValueError, match="level: must be between 0 and 1"):
            value_distribution(model, cdnow_weeks, level=level)
    with pytest.raises(ValueError, match="months: must be a whole number >= 1"):
        value_distribution(model, cdnow_weeks, months=0)
    with pytest.raises(ValueError, match="missing column 'monetary_value'"):
        value_distribution(model, cdnow_weeks.drop(columns="monetary_value"))
    with pytest.raises(ValueError, match="horizon_periods: must be positive"):
        holdout_distribution(model, cdnow_weeks, 0)
    with pytest.raises(ValueError, match="discount_rate: must be >= 0"):
        simulate_value(model, cdnow_weeks, 10, discount_rate=-0.1)
    with pytest.raises(ValueError, match="chunk_customers: must be at least 1"):
        value_distribution(model, cdnow_weeks, chunk_customers=0)
