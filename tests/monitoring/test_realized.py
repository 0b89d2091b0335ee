"""The statistics realized performance judges by, against simulation: the AUC's standard error, and the
calibration check quiet on a calibrated cohort and in breach on a cohort that churns more than served."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from crm_analytics.monitoring.realized import Cohort, auc_row, calibration_row, hanley_mcneil_se
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse


def cohort(tmp_path: Path) -> Cohort:
    """A cohort's identity (the statistics below read no table)."""
    return Cohort(Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}"), date(2025, 10, 31), "crm-churn", "3", 30)


def served_and_churned(seed: int, n: int, extra: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Served probabilities, and who churned when the truth is those plus ``extra``."""
    rng = np.random.default_rng(seed)
    risk = rng.beta(6, 2, n)
    return risk, rng.random(n) < np.clip(risk + extra, 0, 1)


def test_hanley_mcneil_standard_error_agrees_with_the_bootstrap() -> None:
    risk, churned = served_and_churned(0, 3_000)
    auc = roc_auc_score(churned, risk)
    rng = np.random.default_rng(1)
    draws = [rng.integers(0, len(risk), len(risk)) for _ in range(400)]
    spread = np.std([roc_auc_score(churned[i], risk[i]) for i in draws])
    assert hanley_mcneil_se(auc, int(churned.sum()), int((~churned).sum())) == pytest.approx(spread, rel=0.15)


@pytest.mark.parametrize("seed", range(10))
def test_calibrated_cohort_is_not_a_breach(seed: int, tmp_path: Path) -> None:
    risk, churned = served_and_churned(seed, 2_000)
    row = calibration_row(cohort(tmp_path), "churn_rate", churned, risk, Settings())
    assert not row.breach
    assert row.value == pytest.approx(churned.mean())
    assert row.baseline == pytest.approx(risk.mean())


def test_cohort_churning_more_than_served_is_a_breach(tmp_path: Path) -> None:
    risk, churned = served_and_churned(0, 2_000, extra=0.08)
    row = calibration_row(cohort(tmp_path), "churn_rate", churned, risk, Settings())
    assert row.breach, row.detail
    assert row.p_value is not None
    assert row.p_value < 1e-5


def test_half_the_returning_guests_staying_away_is_a_breach_where_few_return(tmp_path: Path) -> None:
    # 5% expected back within a short horizon, 2.5% came: 2.5 points on the churn rate, odds x2
    rng = np.random.default_rng(0)
    risk = rng.beta(95, 5, 5_000)
    churned = rng.random(len(risk)) < 1 - (1 - risk) / 2
    row = calibration_row(cohort(tmp_path), "churn_rate", churned, risk, Settings())
    assert row.value - row.baseline < 0.03  # an absolute gap of 5 points would not see it
    assert row.breach, row.detail
    assert "odds x2." in row.detail or "odds x1.9" in row.detail


def test_calibration_of_a_cohort_where_everyone_churned_is_finite(tmp_path: Path) -> None:
    churned, risk = np.ones(400, dtype=bool), np.full(400, 0.9)
    row = calibration_row(cohort(tmp_path), "churn_rate:3+", churned, risk, Settings())
    assert row.breach, row.detail  # 400 of 400 where 360 were expected
    assert "odds x88" in row.detail  # (1 - 1/800) / (1/800) against 9


def test_small_gap_on_a_huge_cohort_is_not_a_breach(tmp_path: Path) -> None:
    # certain (p ~ 0) but within CRM_REALIZED_MAX_CHURN_ODDS_RATIO: not worth an alarm
    risk, churned = served_and_churned(0, 200_000, extra=0.02)
    row = calibration_row(cohort(tmp_path), "churn_rate", churned, risk, Settings())
    assert row.p_value is not None
    assert row.p_value < 1e-10
    assert not row.breach


def test_auc_well_below_training_is_a_breach_and_close_to_it_is_not(tmp_path: Path) -> None:
    risk, churned = served_and_churned(0, 2_000)
    realized = roc_auc_score(churned, risk)
    assert not auc_row(cohort(tmp_path), churned, risk, realized + 0.01, Settings()).breach
    row = auc_row(cohort(tmp_path), churned, risk, realized + 0.15, Settings())
    assert row.breach, row.detail
    assert auc_row(cohort(tmp_path), churned, risk, None, Settings()).baseline is None
