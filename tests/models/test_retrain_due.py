"""When `crm retrain` retrains: weekly in data days, early on a realized-performance breach of a
cohort scored after the last training cutoff once enough newer labels exist, never on the same cutoff
twice."""

from __future__ import annotations

from datetime import date

import pytest

from crm_analytics.jobs import retrain
from crm_analytics.jobs.retrain import Champion, due_reason
from crm_analytics.models.churn.family import FAMILY as CHURN
from crm_analytics.monitoring.realized import Realized
from crm_analytics.settings import Settings

DAY = date(2025, 12, 31)


def champion(tried: date) -> Champion:
    return Champion(CHURN, "3", 184, "weeks", tried, None)


def matured(*rows: tuple[str, str, str, bool]) -> list[Realized]:
    """Realized rows of crm-churn: (scored day, version, metric, breach)."""
    return [
        Realized(day, "crm-churn", version, metric, 0.9, 0.8, 1e-9, 1000, 184, day, breach, "")
        for day, version, metric, breach in rows
    ]


def test_schedule_counts_data_days_since_the_last_training_cutoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrain, "matured_rows", lambda settings: [])
    cutoff = champion(DAY).cutoff(DAY)  # 2025-06-30
    assert due_reason(Settings(), DAY, champion(cutoff)) is None  # trained there already
    assert due_reason(Settings(), DAY, champion(date(2025, 6, 24))) is None  # six days
    assert due_reason(Settings(), DAY, champion(date(2025, 6, 23))) == (
        "schedule: last trained at 2025-06-23, 7 days before 2025-06-30"
    )


def test_a_breach_retrains_early_but_not_every_night(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = matured(("2025-06-20", "2", "churn_rate", False), ("2025-06-28", "2", "churn_rate:3+", True))
    monkeypatch.setattr(retrain, "matured_rows", lambda settings: rows)
    assert due_reason(Settings(), DAY, champion(date(2025, 6, 29))) is None  # a day of newer labels
    # scored by v2, the champion is v3: a refit at an older cutoff learned nothing of that window
    assert due_reason(Settings(), DAY, champion(date(2025, 6, 27))) == (
        "breach: churn_rate:3+ scored 2025-06-28 by v2"
    )
    assert due_reason(Settings(retrain_on_breach=False), DAY, champion(date(2025, 6, 27))) is None


def test_a_breach_older_than_the_last_training_cutoff_or_healed_since_does_not_retrain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    breached = matured(("2025-06-20", "3", "roc_auc", True))
    monkeypatch.setattr(retrain, "matured_rows", lambda settings: breached)
    assert due_reason(Settings(), DAY, champion(date(2025, 6, 26))) is None  # trained after that day
    monthly = Settings(retrain_every_days=30)
    assert due_reason(monthly, DAY, champion(date(2025, 6, 19))) == "breach: roc_auc scored 2025-06-20 by v3"
    healed = matured(("2025-06-20", "3", "roc_auc", True), ("2025-06-28", "3", "roc_auc", False))
    monkeypatch.setattr(retrain, "matured_rows", lambda settings: healed)
    assert due_reason(monthly, DAY, champion(date(2025, 6, 19))) is None  # the latest day holds
