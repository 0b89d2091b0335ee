"""Two weeks of the service: a demo chain's history up to 2025-12-17 (models trained on the last cutoff
with mature labels, the first refresh), then one increment a day dropped into the incoming folder and
`crm refresh` run on it, with a planted change (direct bookings move to OTAs) from day 5.

Each day the served `as_of` moves to that day, and every guest who bought that day has a new recency
and a new expected-purchases score; re-running a day changes nothing; a refresh killed mid-run leaves
the previous snapshot serving and the next run completes the day (``ServiceDays``). Run on PostgreSQL
(``test_daily_refresh_postgres``); on DuckDB the same day checks run for 26 days inside the monitoring
simulation (``test_monitoring_days``), so the two go to two workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import ibis
import pandas as pd
import pytest
import sqlalchemy as sa

from crm_analytics.datasets.demo import Shift
from crm_analytics.features.purchases import purchases_as_of
from crm_analytics.features.store import read_features
from crm_analytics.jobs import data, monitor, refresh, run, status
from crm_analytics.profiles.links import customer_transactions
from crm_analytics.settings import Settings, load_settings
from crm_analytics.store import ServingStore
from crm_analytics.warehouse import Warehouse
from tests.conftest import project_env

CUSTOMERS = 2_000
SEED = 5
HISTORY_END = date(2025, 12, 17)
DAYS = [HISTORY_END + timedelta(days=i) for i in range(1, 15)]  # 2025-12-18 .. 2025-12-31
SHIFT = Shift(date(2025, 12, 22), "channel")  # day 5; drift flags it on its 5th refresh (seed 5)
RERUN_DAYS = {DAYS[0], DAYS[4]}
KILLED_DAY = DAYS[9]


def project_settings(monkeypatch: pytest.MonkeyPatch, folder: Path, warehouse_url: str | None) -> Settings:
    """Settings of a project in ``folder`` (on ``warehouse_url`` when given)."""
    env = project_env(folder)
    if warehouse_url is not None:
        env["CRM_WAREHOUSE_URL"] = warehouse_url
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def days_of_refreshes(settings: Settings) -> None:
    """The whole simulation; fails on the first day that does not hold."""
    started = run.run(settings, CUSTOMERS, SEED, until=HISTORY_END, shifts=[SHIFT])
    assert started.refresh.as_of == str(HISTORY_END)
    service = ServiceDays(settings, RERUN_DAYS, KILLED_DAY)
    quality_checks, false_alarms, drifted = 0, [], {}
    for number, day in enumerate(DAYS, start=1):
        data.demo_increment(settings.incoming, day, day, CUSTOMERS, SEED, [SHIFT])
        service.before(day)
        report = refresh.refresh(settings)
        assert report.status == "succeeded", (number, report.status)
        quality = report.stages["ingest"]["quality"]  # ordinary days of the feed: data quality holds
        quality_checks += quality["checks"]
        false_alarms += [(number, b["table_name"], b["check_name"], b["detail"]) for b in quality["breaches"]]
        drifted[day] = report.stages["monitor"]["drift_breaches"]  # e.g. "recent:channel"
        service.after(number, day, report)
    assert not false_alarms, false_alarms
    assert quality_checks > 100 * len(DAYS) // 2  # checked (the killed day's ran in the killed refresh)
    drift_alarms = {day: names for day, names in drifted.items() if day < SHIFT.date and names}
    assert not drift_alarms, drift_alarms  # no drift alarm before the planted change
    flagged = [day for day, names in drifted.items() if "recent:channel" in names]
    assert flagged, drifted  # the channel shift is seen by drift (its delay depends on the day's volume)
    delay = (flagged[0] - SHIFT.date).days + 1
    print(f"channel shift on {SHIFT.date} flagged by drift on {flagged[0]}: {delay} refreshes")
    assert {name for names in drifted.values() for name in names} <= {"recent:channel"} | {
        f"feature:share_channel_{c}" for c in ("direct", "ota")
    }
    monitored = monitor.monitor(settings)  # what `crm monitor` prints: the last day; data quality holds
    assert (monitored.status, monitored.as_of) == ("breach", str(DAYS[-1]))
    assert not monitored.breaches
    assert {c.name for c in monitored.drift if c.breach} >= {"channel"}
    shifted = channel_share(settings, SHIFT.date)
    assert shifted["after"] > shifted["before"] + 0.2, shifted  # the planted change reached the warehouse
    service.finished(DAYS[-1])


class ServiceDays:
    """What each day of a simulation must show, whatever else it checks: the served ``as_of`` moves to
    the day and every returning guest who bought that day has a new recency and a new expected-purchases
    score; on ``rerun_days`` the same day twice changes nothing; on ``killed_day`` a refresh is killed
    mid-run first (the previous snapshot keeps serving; the next run completes the day)."""

    def __init__(self, settings: Settings, rerun_days: set[date], killed_day: date) -> None:
        self.settings, self.rerun_days, self.killed_day = settings, rerun_days, killed_day
        self.yesterday: Served | None = None

    def before(self, day: date) -> None:
        """Before the day's refresh (the day's files delivered)."""
        if self.yesterday is None:
            self.yesterday = served(self.settings)
        if day == self.killed_day:
            killed_mid_run(self.settings, self.yesterday)

    def after(self, number: int, day: date, report: refresh.RefreshReport) -> None:
        """After the day's refresh (``report``)."""
        assert self.yesterday is not None
        assert report.as_of == str(day), f"day {number}: served as of {report.as_of}"
        today = served(self.settings)
        assert today.snapshot_id == report.snapshot_id
        buyers = bought_on(self.settings, day)
        assert buyers, f"day {number}: nobody bought (the test needs purchases every day)"
        returning = buyers & set(self.yesterday.recency)
        assert returning, f"day {number}: no returning guest bought"
        for customer in returning:
            assert today.recency[customer] != self.yesterday.recency[customer], (number, customer)
            assert today.expected[customer] != self.yesterday.expected[customer], (number, customer)
        assert buyers - returning <= set(today.recency)  # first purchases are served too
        if day in self.rerun_days:
            again = refresh.refresh(self.settings)
            assert again.status == "unchanged"
            assert served(self.settings).snapshot_id == today.snapshot_id
        self.yesterday = today

    def finished(self, last_day: date) -> None:
        """After the last day: one refresh in the history was interrupted, the last one succeeded."""
        runs = status.status(self.settings, refreshes=100).refreshes
        assert [r["status"] for r in runs].count("interrupted") == 1
        assert runs[0]["status"] == "succeeded"
        assert runs[0]["as_of"] == str(last_day)


class Served:
    """The served snapshot: its id, and per customer the day's recency and expected purchases."""

    def __init__(self, snapshot_id: str, recency: dict[str, float], expected: dict[str, float]) -> None:
        self.snapshot_id, self.recency, self.expected = snapshot_id, recency, expected


def served(settings: Settings) -> Served:
    store = ServingStore(settings.serving_store_url)
    snapshot = store.active()
    assert snapshot is not None
    with Warehouse(settings.warehouse_url) as warehouse:
        features = read_features(warehouse, date.fromisoformat(snapshot.as_of)).set_index("customer_id")
    query = sa.text("SELECT customer_id, scores FROM serving_customers WHERE snapshot_id = :sid")
    with store.engine.connect() as conn:
        rows = conn.execute(query, {"sid": snapshot.snapshot_id}).all()
    expected = {cid: json.loads(s)["expected_purchases"] for cid, s in rows if s}
    return Served(snapshot.snapshot_id, features["recency"].to_dict(), expected)


def bought_on(settings: Settings, day: date) -> set[str]:
    """Customers with a purchase dated ``day`` (not cancelled by then), as the features count them."""
    with Warehouse(settings.warehouse_url) as warehouse:
        purchases = purchases_as_of(customer_transactions(warehouse.ibis), day)
        frame = purchases.filter(purchases.day == ibis.date(day)).select("customer_id").execute()
    return set(frame["customer_id"].astype(str))


def channel_share(settings: Settings, since: date) -> dict[str, float]:
    """The share of bookings through OTAs before and after ``since`` (the planted channel shift)."""
    with Warehouse(settings.warehouse_url) as warehouse:
        frame = warehouse.fetch('SELECT "timestamp", channel FROM transactions WHERE channel IS NOT NULL')
    after = pd.to_datetime(frame["timestamp"]).dt.date >= since
    ota = frame["channel"].astype(str) == "ota"
    return {"before": float(ota[~after].mean()), "after": float(ota[after].mean())}


def killed_mid_run(settings: Settings, yesterday: Served) -> None:
    """`crm refresh` killed (SIGKILL) once its segments are stored, while it writes the scores: the
    previous snapshot still serves, and the history shows the run as running."""
    crm = Path(sys.executable).with_name("crm")
    process = subprocess.Popen([str(crm), "refresh"], env=os.environ.copy(), stderr=subprocess.DEVNULL)
    try:
        wait_until_running_stage(settings, "segments", process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert served(settings).snapshot_id == yesterday.snapshot_id
    last = status.status(settings).last_refresh
    assert last is not None
    assert last["status"] == "running"


def wait_until_running_stage(settings: Settings, stage: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert process.poll() is None, "the refresh finished before it could be killed"
        last = status.status(settings).last_refresh
        if last and last["status"] == "running" and stage in last["stages_done"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"the refresh never finished its {stage} stage")
