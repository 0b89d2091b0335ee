"""Data quality per refresh and source: quiet on ordinary days, a breach when volume drops, a column goes
missing, rows are quarantined or arrive late; the same day twice changes nothing. On DuckDB and on
PostgreSQL (the ``warehouse`` fixture)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.monitoring import data_quality
from crm_analytics.settings import Settings, load_settings
from crm_analytics.warehouse import Warehouse, migrations
from tests.test_cli import crm

FIRST_DAY = date(2025, 3, 1)


def day_file(folder: Path, day: date, rows: int, seed: int, source: str = "pms", **damage: float) -> Path:
    """A day's transactions: ``rows`` purchases that day; ``damage`` sets a share of rows with no
    channel (``no_channel``), an unknown type (``bad_type``) or a timestamp ten days old (``late``)."""
    rng = np.random.default_rng(seed)
    stamp = pd.Timestamp(day) + pd.to_timedelta(rng.integers(0, 86_400, rows), unit="s")
    frame = pd.DataFrame(
        {
            "transaction_id": [f"{day:%Y%m%d}-{i}" for i in range(rows)],
            "customer_id": [f"c{k}" for k in rng.integers(0, 500, rows)],
            "source": source,
            "timestamp": stamp,
            "amount": rng.gamma(2.0, 80.0, rows).round(2),
            "currency": "EUR",
            "type": "purchase",
            "channel": rng.choice(["web", "phone", "agent"], rows),
        }
    )
    picked = np.arange(rows) / rows  # the first rows take the damage
    frame.loc[picked < damage.get("no_channel", 0), "channel"] = None
    frame.loc[picked < damage.get("bad_type", 0), "type"] = "gift"
    frame.loc[picked < damage.get("late", 0), "timestamp"] -= pd.Timedelta(days=10)
    path = folder / f"transactions_{day:%Y%m%d}.csv"
    frame.to_csv(path, index=False)
    return path


def refresh_day(
    warehouse: Warehouse, settings: Settings, folder: Path, day: date, rows: int, **damage: Any
) -> list[data_quality.QualityCheck]:
    ingest_file(warehouse, day_file(folder, day, rows, seed=day.toordinal(), **damage), settings)
    return data_quality.record(warehouse, settings, day)


def breaches(checks: list[data_quality.QualityCheck]) -> set[str]:
    return {c.check_name for c in checks if c.breach}


def test_ordinary_days_raise_nothing_and_a_damaged_day_names_its_checks(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    settings = load_settings()
    for k in range(6):  # volume varies by about a fifth from day to day
        day = FIRST_DAY + timedelta(days=k)
        checks = refresh_day(warehouse, settings, tmp_path, day, rows=200 + 40 * (k % 3))
        assert breaches(checks) == set(), day
    learning = [c for c in checks if c.baseline is None]
    assert not learning  # six days of history: every check has its baseline

    dropped = FIRST_DAY + timedelta(days=6)  # a twelfth of the usual rows: the volume breaches
    checks = refresh_day(warehouse, settings, tmp_path, dropped, rows=20)
    assert breaches(checks) == {"rows_new"}
    volume = next(c for c in checks if c.check_name == "rows_new")
    assert volume.baseline == pytest.approx(240.0)
    assert "20 rows, baseline 240" in volume.detail

    damaged = FIRST_DAY + timedelta(days=7)  # the breached day stays out of the baseline
    checks = refresh_day(
        warehouse, settings, tmp_path, damaged, rows=240, no_channel=0.4, bad_type=0.05, late=0.2
    )
    assert breaches(checks) >= {"null_rate:channel", "rejected_share", "late_share"}
    assert "rows_new" not in breaches(checks)
    assert any(name.startswith("rejected_share:") for name in breaches(checks))

    stored = data_quality.latest(warehouse)
    assert {c.as_of for c in stored} == {str(damaged)}
    assert breaches(stored) == breaches(checks)
    again = data_quality.record(warehouse, settings, damaged)  # the same day again: nothing new
    assert again == []
    assert data_quality.latest(warehouse) == stored

    silent = FIRST_DAY + timedelta(days=8)  # the booking system stops delivering; another source does
    checks = refresh_day(warehouse, settings, tmp_path, silent, rows=30, source="web-shop")
    stopped = next(c for c in checks if c.source == "pms" and c.check_name == "rows_new")
    assert (stopped.value, stopped.breach) == (0.0, True)


def test_the_first_days_are_learning_not_alarms(warehouse: Warehouse, tmp_path: Path) -> None:
    settings = load_settings()
    checks = refresh_day(warehouse, settings, tmp_path, FIRST_DAY, rows=50, no_channel=0.9)
    assert breaches(checks) == set()
    assert all(c.baseline is None and c.detail.startswith("learning") for c in checks)
    channel = next(c for c in checks if c.check_name == "null_rate:channel")
    assert channel.value == pytest.approx(0.9, abs=0.15)


def test_crm_monitor_exits_3_on_a_breach_and_0_when_all_hold(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_WAREHOUSE_URL", f"duckdb:///{isolated / 'w.duckdb'}")
    code, answer, _ = crm("monitor", "--json")
    assert code == 1  # nothing published yet: the reading commands say so
    settings = load_settings()
    with Warehouse(settings.warehouse_url) as warehouse:
        migrations.upgrade(warehouse)
        for k in range(4):
            refresh_day(warehouse, settings, isolated, FIRST_DAY + timedelta(days=k), rows=200)
    assert crm("warehouse", "publish")[0] == 0
    code, answer, _ = crm("monitor", "--json")
    assert code == 0
    assert answer["status"] == "ok"
    assert answer["data_quality"]["as_of"] == str(FIRST_DAY + timedelta(days=3))
    with Warehouse(settings.warehouse_url) as warehouse:
        refresh_day(warehouse, settings, isolated, FIRST_DAY + timedelta(days=4), rows=40)
    assert crm("warehouse", "publish")[0] == 0
    code, answer, stderr = crm("monitor")
    assert code == 3
    assert "breach: transactions/pms rows_new: 40 rows, baseline 200" in stderr
