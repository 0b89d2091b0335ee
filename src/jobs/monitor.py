"""What watches the data and the models: ``watch`` (the refresh's ``monitor`` stage) measures a day's
drift and the realized performance of matured scored days and logs the day's report to MLflow;
``monitor`` (``crm monitor``) reads the latest state back and says whether anything is in breach (the CLI
then exits 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from crm_analytics.jobs.common import open_reader
from crm_analytics.monitoring import data_quality, drift, realized, report
from crm_analytics.monitoring.drift import DriftCheck
from crm_analytics.monitoring.realized import Realized
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore
from crm_analytics.store.monitoring_status import Gauge, MonitoringStatus
from crm_analytics.warehouse import Warehouse


@dataclass(frozen=True)
class WatchReport:
    """What a refresh's monitoring measured: counts, the breached checks' names, the MLflow run."""

    as_of: str
    drift_checks: int
    drift_breaches: list[str]
    realized_rows: int
    realized_breaches: list[str]
    mlflow_run_id: str

    @property
    def breaches(self) -> int:
        return len(self.drift_breaches) + len(self.realized_breaches)

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "drift_checks": self.drift_checks,
            "drift_breaches": self.drift_breaches,
            "realized_rows": self.realized_rows,
            "realized_breaches": self.realized_breaches,
            "breaches": self.breaches,
            "mlflow_run_id": self.mlflow_run_id,
        }


def watch(settings: Settings, warehouse: Warehouse, store: ServingStore, as_of: date) -> WatchReport:
    """Drift for ``as_of``, realized performance of what matured by then, the report in MLflow and the
    gauges of ``/metrics`` in the serving store."""
    checks = drift.record(warehouse, settings, as_of)
    matured = realized.record(warehouse, settings, as_of)
    quality = [q for q in data_quality.latest(warehouse) if q.as_of == str(as_of)]
    trend = realized.latest(warehouse)
    run_id = report.log_run(settings, as_of, checks, trend, quality)
    state = MonitorReport(str(as_of), quality, checks, trend)
    MonitoringStatus(store.engine).replace(str(as_of), gauges(state))
    return WatchReport(
        str(as_of),
        len(checks),
        [f"{c.view}:{c.name}" for c in checks if c.breach],
        len(matured),
        [f"{r.model}:{r.metric}@{r.scored_as_of}" for r in matured if r.breach],
        run_id,
    )


@dataclass(frozen=True)
class MonitorReport:
    """The latest checks of each kind and their breaches."""

    as_of: str | None
    checks: list[data_quality.QualityCheck]
    drift: list[DriftCheck] = field(default_factory=list)
    realized: list[Realized] = field(default_factory=list)

    @property
    def breaches(self) -> list[data_quality.QualityCheck]:
        return [c for c in self.checks if c.breach]

    def latest_realized(self) -> list[Realized]:
        """Each model's latest matured day's rows."""
        return realized.latest_cohorts(self.realized)

    @property
    def status(self) -> str:
        if not self.checks and not self.drift and not self.realized:
            return "no data yet"
        breached = self.breaches or any(c.breach for c in self.drift)
        breached = breached or any(r.breach for r in self.latest_realized())
        return "breach" if breached else "ok"

    def as_dict(self) -> dict[str, Any]:
        latest = self.latest_realized()
        return {
            "status": self.status,
            "data_quality": {
                "as_of": self.as_of,
                "checks": len(self.checks),
                "learning": sum(c.baseline is None for c in self.checks),
                "breaches": [c.as_dict() for c in self.breaches],
            },
            "drift": {
                "as_of": self.drift[0].as_of if self.drift else None,
                "checks": len(self.drift),
                "largest": sorted((c.as_dict() for c in self.drift), key=lambda c: -c["distance"])[:5],
                "breaches": [c.as_dict() for c in self.drift if c.breach],
            },
            "realized": {
                "latest": [r.as_dict() for r in latest],
                "breaches": [r.as_dict() for r in latest if r.breach],
                "trend": {
                    f"{r.model}:{r.metric}": [
                        [t.scored_as_of, round(t.value, 4)]
                        for t in self.realized
                        if (t.model, t.metric) == (r.model, r.metric)
                    ]
                    for r in latest
                    if r.metric in ("roc_auc", "churn_rate", "purchases_total_error")
                },
            },
        }


def gauges(state: MonitorReport) -> list[Gauge]:
    """The figures ``/metrics`` shows: the day, breaches by kind, the largest drift per view, the
    data-quality checks, each model's latest realized metrics and what they were expected to be."""
    day = state.drift[0].as_of if state.drift else state.as_of
    out = []
    if day:
        start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
        out.append(Gauge("crm_monitor_day", start.timestamp()))
    latest = state.latest_realized()
    for kind, count in (
        ("data_quality", len(state.breaches)),
        ("drift", sum(c.breach for c in state.drift)),
        ("realized", sum(r.breach for r in latest)),
    ):
        out.append(Gauge("crm_monitor_breaches", count, {"kind": kind}))
    for view in sorted({c.view for c in state.drift}):
        farthest = max(c.comparison.distance for c in state.drift if c.view == view)
        out.append(Gauge("crm_drift_max_distance", farthest, {"view": view}))
    out.append(Gauge("crm_data_quality_checks", len(state.checks)))
    for r in latest:
        labels = {"model": r.model, "version": r.version, "metric": r.metric}
        out.append(Gauge("crm_realized", r.value, labels))
        if r.baseline is not None:
            out.append(Gauge("crm_realized_expected", r.baseline, labels))
    return out


def monitor(settings: Settings) -> MonitorReport:
    """The latest state, read from the published copy as the reading commands do."""
    with open_reader(settings) as warehouse:
        checks = data_quality.latest(warehouse)
        drifted, matured = drift.latest(warehouse), realized.latest(warehouse)
    return MonitorReport(checks[0].as_of if checks else None, checks, drifted, matured)
