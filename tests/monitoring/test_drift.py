"""Drift of the recent purchases on a 20,000-guest demo chain: two months of ordinary days raise no
alarm, prices raised 25% from a day on are flagged within three refreshes, the same day twice stores the
same rows. On DuckDB and on PostgreSQL (the ``warehouse`` fixture)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from crm_analytics.datasets.demo import DemoConfig, Shift, generate_demo
from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.monitoring import drift
from crm_analytics.settings import Settings, load_settings
from crm_analytics.warehouse import Warehouse

PRICE_SHIFT = Shift(date(2025, 11, 1), "price")
QUIET_DAYS = [date(2025, 9, 1) + timedelta(days=i) for i in range(61)]  # 2025-09-01 .. 2025-10-31


@pytest.fixture(scope="module")
def shifted_purchases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo chain's transactions from 2025-05-01 to 2025-11-05, prices up 25% from 2025-11-01."""
    data = generate_demo(DemoConfig(customers=20_000, seed=5, shifts=(PRICE_SHIFT,)))
    stamps = data.transactions["timestamp"]
    window = data.transactions[(stamps >= pd.Timestamp("2025-05-01")) & (stamps < pd.Timestamp("2025-11-06"))]
    path = tmp_path_factory.mktemp("drift") / "transactions.parquet"
    window.to_parquet(path)
    return path


@pytest.mark.slow
def test_recent_purchases_quiet_for_two_months_then_a_price_rise_flagged_within_three_days(
    warehouse: Warehouse, shifted_purchases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    ingest_file(warehouse, shifted_purchases, settings)
    false_alarms = [
        (day, c.name, c.detail)
        for day in QUIET_DAYS
        for c in drift.record(warehouse, settings, day)
        if c.breach
    ]
    assert not false_alarms, false_alarms
    flagged = None
    for delay in range(1, 4):  # the shift's day is the first refresh that sees it
        day = PRICE_SHIFT.date + timedelta(days=delay - 1)
        checks = {c.name: c for c in drift.record(warehouse, settings, day)}
        assert set(checks) == {"amount_per_night", "channel", "room_type", "purpose"}
        assert (
            checks["amount_per_night"].reference == f"{day - timedelta(days=96)}..{day - timedelta(days=7)}"
        )
        if checks["amount_per_night"].breach:
            flagged = delay
            break
    assert flagged is not None, "the price rise was not flagged within three refreshes"
    assert not checks["purpose"].breach  # what did not change stays quiet
    stored = drift.latest(warehouse)
    assert [c.as_dict() for c in stored] == [
        c.as_dict() for c in sorted(checks.values(), key=lambda c: c.name)
    ]
    again = drift.record(warehouse, settings, day)  # the same day twice: the same rows
    assert [c.as_dict() for c in drift.latest(warehouse)] == [c.as_dict() for c in stored]
    assert len(again) == len(stored)


def test_record_with_nothing_to_compare_stores_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert drift.record(warehouse, settings, date(2025, 1, 1)) == []
    assert drift.latest(warehouse) == []
