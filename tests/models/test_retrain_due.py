"""When `crm retrain` retrains: weekly in data days, early on the champion's realized-performance
breach once enough newer labels exist, never on the same cutoff twice."""

from __future__ import annotations

from datetime import date

import pytest

from crm_analytics.jobs import retrain
from crm_analytics.jobs.retrain import Champion, due_reason
from crm_analytics.models.churn.family import FAMILY as CHURN
from crm_analytics.settings import Settings

DAY = date(2025, 12, 31)


def champion(tried: date) -> Champion:
    return Champion(CHURN, "3", 184, "weeks", tried, None)


def test_schedule_counts_data_days_since_the_last_training_cutoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrain, "realized_breaches", lambda settings, champion: [])
    cutoff = champion(DAY).cutoff(DAY)  # 2025-06-30
    assert due_reason(Settings(), DAY, champion(cutoff)) is None  # trained there already
    assert due_reason(Settings(), DAY, champion(date(2025, 6, 24))) is None  # six days
    assert due_reason(Settings(), DAY, champion(date(2025, 6, 23))) == (
        "schedule: last trained at 2025-06-23, 7 days before 2025-06-30"
    )


def test_a_breach_retrains_early_but_not_every_night(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        retrain, "realized_breaches", lambda settings, champion: ["churn_rate scored 2025-06-01"]
    )
    assert due_reason(Settings(), DAY, champion(date(2025, 6, 29))) is None  # a day of newer labels
    assert due_reason(Settings(), DAY, champion(date(2025, 6, 27))) == (
        "breach of v3: churn_rate scored 2025-06-01"
    )
    assert due_reason(Settings(retrain_on_breach=False), DAY, champion(date(2025, 6, 27))) is None
