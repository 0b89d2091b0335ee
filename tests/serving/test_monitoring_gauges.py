"""The monitoring gauges of /metrics come from the serving store, as the last refresh left them."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from crm_analytics.serving.monitoring_gauges import MonitoringCollector
from crm_analytics.store import ServingStore
from crm_analytics.store.monitoring_status import Gauge, MonitoringStatus


def exposition(store: ServingStore | None) -> str:
    registry = CollectorRegistry()
    registry.register(MonitoringCollector(lambda: store))
    return generate_latest(registry).decode()


def test_stored_gauges_are_exposed_with_their_labels(tmp_path: Path) -> None:
    store = ServingStore(f"sqlite:///{tmp_path / 'serving.db'}").upgrade()
    status = MonitoringStatus(store.engine)
    status.replace("2025-12-30", [Gauge("crm_monitor_breaches", 5, {"kind": "drift"})])
    status.replace(  # the next day replaces the previous day's gauges whole
        "2025-12-31",
        [
            Gauge("crm_monitor_breaches", 1, {"kind": "drift"}),
            Gauge("crm_monitor_breaches", 0, {"kind": "realized"}),
            Gauge("crm_realized", 0.87, {"model": "crm-churn", "version": "3", "metric": "roc_auc"}),
        ],
    )
    text = exposition(store)
    assert 'crm_monitor_breaches{kind="drift"} 1.0' in text
    assert 'crm_monitor_breaches{kind="realized"} 0.0' in text
    assert 'crm_realized{metric="roc_auc",model="crm-churn",version="3"} 0.87' in text
    assert "crm_snapshot_age_days" not in text  # nothing served yet
    assert [g.name for g in status.read()] == ["crm_monitor_breaches", "crm_monitor_breaches", "crm_realized"]


def test_a_store_not_migrated_yet_gives_no_gauges_and_no_error(tmp_path: Path) -> None:
    assert exposition(ServingStore(f"sqlite:///{tmp_path / 'empty.db'}")) == ""
    assert exposition(None) == ""
