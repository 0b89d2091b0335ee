"""Sixty days of the service with planted shifts: what monitoring flags, how late, what retraining decides.

A demo chain's history up to 2025-11-01 is served by `crm run` (churn trained for a short horizon, so
its cohorts mature within the run); then one day's increment a day is delivered, `crm refresh` runs
and `crm retrain` runs (the Dagster schedule's order: it retrains when due, weekly or on a realized
breach). Planted: prices x1.25 from day 30 and, from day 40, half the guests who would still come back
stop (``datasets.demo.shifts``). Recorded per day: every alarm (data quality, drift, realized
performance), the refresh's and the retrain's seconds, and every retrain's decisions; at the end, each
registered version with the gate's figures.

Read from the record: false alarms (any alarm before the price shift), the price shift's detection
delay (the first refresh whose drift flags ``recent:amount_per_night``, counted in refreshes from the
shift's day), the churn shift's (the first refresh whose realized performance flags ``crm-churn``), and
the first cohort the churn shift could touch and the first it wholly covers (scored the day before
it), with the day each is measured (scored day + horizon + ``CRM_MONITOR_LATE_DAYS``).

    .venv/bin/python benchmarks/monitoring_days.py        # 20,000 guests -> monitoring_days.json
    .venv/bin/python benchmarks/monitoring_days.py --customers 5000 --out /tmp/m.json   # a quick look

``tests/e2e/test_monitoring_days.py`` runs a smaller variant (:data:`CI_PLAN`) in `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from crm_analytics.datasets.demo import Shift
from crm_analytics.jobs import data, model_history, refresh, retrain, run
from crm_analytics.jobs.refresh import RefreshReport
from crm_analytics.settings import Settings

PRICE_CHECK = "recent:amount_per_night"


@dataclass(frozen=True)
class Plan:
    """The simulation: guests, days of refreshes after the history, the shifts' day numbers (day 1 is
    the first refreshed day), churn's horizon."""

    customers: int = 20_000
    seed: int = 5
    history_end: date = date(2025, 11, 1)
    days: int = 60
    price_day: int = 30
    churn_day: int = 40
    horizon_days: int = 14
    retrain_every_days: int = 7  # CRM_RETRAIN_EVERY_DAYS during the run

    def day(self, number: int) -> date:
        return self.history_end + timedelta(days=number)

    @property
    def shifts(self) -> list[Shift]:
        return [Shift(self.day(self.price_day), "price"), Shift(self.day(self.churn_day), "churn")]


# `make test`'s variant: 5,000 guests, 26 refreshed days squeezed around the shifts (quiet days 1-12,
# realized performance measured from day 10 on: churn's horizon is 7 days; the churn shift's first
# wholly covered cohort is measured on day 25). Its price shift needs about a week of drift's window to
# show (KS p under 1e-5 from the 7th refresh at this volume, about 45 purchases a day; 5e-7 on the 3rd
# at 10,000 guests), so the test allows 7 refreshes, where the full run must flag it within 3. It
# retrains on a fortnightly schedule (day 14) and on the breach: one retraining at 5,000 guests takes
# 40 s on a quiet machine and about 90 s under load, and the weekly ones add nothing the full run does
# not show.
CI_PLAN = Plan(customers=5_000, days=26, price_day=13, churn_day=16, horizon_days=7, retrain_every_days=14)
CI_PRICE_DELAY = 7


@dataclass
class Day:
    """One day of the simulation: its alarms by kind, seconds, and the retrain's report."""

    number: int
    day: str
    quality: list[str]
    drift: list[str]
    realized: list[str]
    realized_rows: int  # matured cohorts' rows measured that day
    quality_checks: int  # data-quality checks of the day's ingest
    refresh_seconds: float
    retrain_seconds: float
    retrain: dict[str, Any]

    @property
    def alarms(self) -> list[str]:
        return self.quality + self.drift + self.realized

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"alarms": self.alarms}


@dataclass
class Outcome:
    """The record of a simulation and what it shows."""

    plan: Plan
    late_days: int
    days: list[Day] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)

    def false_alarms(self) -> dict[str, list[str]]:
        """The alarms raised before the first shift."""
        return {d.day: d.alarms for d in self.days if d.number < self.plan.price_day and d.alarms}

    def first(self, since: int, flagged: Callable[[Day], bool]) -> Day | None:
        return next((d for d in self.days if d.number >= since and flagged(d)), None)

    def price_detected(self) -> Day | None:
        return self.first(self.plan.price_day, lambda d: PRICE_CHECK in d.drift)

    def churn_detected(self) -> Day | None:
        return self.first(self.plan.churn_day, lambda d: any(r.startswith("crm-churn:") for r in d.realized))

    def measured_on(self, scored: date) -> date:
        """The day a cohort scored on ``scored`` is measured (its horizon closed, the late days passed)."""
        return scored + timedelta(days=self.plan.horizon_days + self.late_days)

    def summary(self) -> dict[str, Any]:
        """Detections, their delays in refreshes (the shift's own day counts as the first), and every
        day that retrained or weighed a candidate."""
        plan, price, churn = self.plan, self.price_detected(), self.churn_detected()
        churn_date = plan.day(plan.churn_day)
        first_touched = churn_date - timedelta(days=plan.horizon_days)  # its horizon's last day
        first_covered = churn_date - timedelta(days=1)
        return {
            "false_alarms": self.false_alarms(),
            "price": {
                "shift": str(plan.day(plan.price_day)),
                "flagged": price.day if price else None,
                "delay_refreshes": price.number - plan.price_day + 1 if price else None,
            },
            "churn": {
                "shift": str(churn_date),
                "first_cohort_touched": str(first_touched),
                "first_cohort_touched_measured": str(self.measured_on(first_touched)),
                "first_cohort_covered": str(first_covered),
                "first_cohort_covered_measured": str(self.measured_on(first_covered)),
                "flagged": churn.day if churn else None,
                "flagged_checks": [r for r in churn.realized if r.startswith("crm-churn:")] if churn else [],
                "delay_refreshes": churn.number - plan.churn_day + 1 if churn else None,
            },
            "retrains": [
                {"day": d.day, **d.retrain}
                for d in self.days
                if d.retrain.get("due") or d.retrain.get("promotions")
            ],
        }

    def as_dict(self) -> dict[str, Any]:
        plan = asdict(self.plan) | {"history_end": str(self.plan.history_end)}
        days = [d.as_dict() for d in self.days]
        return {
            "plan": plan,
            "late_days": self.late_days,
            "summary": self.summary(),
            "days": days,
            "versions": self.versions,
        }


class DayChecks(Protocol):
    """What a caller checks around each day's refresh (the tests' [operate] checks)."""

    def before(self, day: date) -> None: ...

    def after(self, number: int, day: date, report: RefreshReport) -> None: ...


def simulate(
    settings: Settings,
    plan: Plan,
    on_day: Callable[[Day], None] | None = None,
    checks: DayChecks | None = None,
) -> Outcome:
    """Serve the history, then refresh and retrain once a day; ``on_day`` sees each day as it ends,
    ``checks`` each refresh. ``settings`` take the plan's retraining schedule."""
    settings = settings.model_copy(update={"retrain_every_days": plan.retrain_every_days})
    run.run(
        settings,
        plan.customers,
        plan.seed,
        until=plan.history_end,
        shifts=plan.shifts,
        horizon_days=plan.horizon_days,
    )
    outcome = Outcome(plan, settings.monitor_late_days)
    for number in range(1, plan.days + 1):
        day = plan.day(number)
        data.demo_increment(settings.incoming, day, day, plan.customers, plan.seed, plan.shifts)
        if checks is not None:
            checks.before(day)
        started = time.perf_counter()
        report = refresh.refresh(settings)
        if report.status != "succeeded":
            raise RuntimeError(f"day {number} ({day}): the refresh {report.status}")
        refresh_seconds = time.perf_counter() - started
        if checks is not None:
            checks.after(number, day, report)
        started = time.perf_counter()
        retrained = retrain.retrain(settings, day).as_dict()
        watched, quality = report.stages["monitor"], report.stages["ingest"]["quality"]
        today = Day(
            number,
            str(day),
            [f"{b['table_name']}:{b['check_name']}" for b in quality["breaches"]],
            list(watched["drift_breaches"]),
            list(watched["realized_breaches"]),
            watched["realized_rows"],
            quality["checks"],
            round(refresh_seconds, 2),
            round(time.perf_counter() - started, 2),
            retrained,
        )
        outcome.days.append(today)
        if on_day is not None:
            on_day(today)
    outcome.versions = [v.as_dict() for v in model_history.history(settings)]
    return outcome


def misses(record: dict[str, Any], price_delay: int = 3) -> list[str]:
    """What a record (``Outcome.as_dict``, or the JSON) falls short of: no alarm before the first
    shift; the price shift flagged by drift within ``price_delay`` refreshes; the churn shift flagged by
    realized performance between the measuring of the first cohort it touches and of the first it
    covers; a retraining after that flag; a gate decision on every candidate version."""
    summary, out = record["summary"], []
    if summary["false_alarms"]:
        out.append(f"false alarms: {summary['false_alarms']}")
    delay = summary["price"]["delay_refreshes"]
    if delay is None or delay > price_delay:
        out.append(f"price shift flagged after {delay} refreshes (at most {price_delay})")
    churn = summary["churn"]
    first, last = churn["first_cohort_touched_measured"], churn["first_cohort_covered_measured"]
    if churn["flagged"] is None or not first <= churn["flagged"] <= last:
        out.append(f"churn shift flagged on {churn['flagged']}, not within {first}..{last}")
    elif not any(r["due"] and r["day"] >= churn["flagged"] for r in summary["retrains"]):
        out.append("no retraining after the churn shift was flagged")
    gated = [v for v in record["versions"] if v["model"] in ("crm-churn", "crm-clv") and v["version"] != "1"]
    out += [f"{v['model']} v{v['version']}: no gate decision" for v in gated if v["gate"] is None]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=Plan.customers)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()
    args.out = args.out.resolve()  # the run happens in a temporary folder
    plan = replace(Plan(), customers=args.customers)
    with tempfile.TemporaryDirectory(prefix="monitoring_days_") as folder:
        settings = project(Path(folder))
        before = os.getloadavg()
        started = time.perf_counter()
        outcome = simulate(settings, plan, on_day=lambda d: print(json.dumps(d.as_dict()), flush=True))
        record = {
            "benchmark": "monitoring_days",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "load_average_before": before,
            "load_average_after": os.getloadavg(),
            "seconds": round(time.perf_counter() - started, 1),
        } | outcome.as_dict()
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record["summary"], indent=2))
    missed = misses(record)
    if missed:
        raise SystemExit("missed: " + "; ".join(missed))


def project(folder: Path) -> Settings:
    """Settings of a project in ``folder`` (its own warehouse, MLflow and serving store)."""
    from crm_analytics.settings import folder_settings, load_settings

    for name in [n for n in os.environ if n.startswith(("CRM_", "MLFLOW_"))]:
        del os.environ[name]
    os.environ |= folder_settings(folder) | {
        "CRM_ERASURE_KEY_FILE": str(folder / "config" / "erasure.key"),
        "CRM_SEGMENTS_MIN_SPLIT_HALF_ARI": "-1",  # as the tests: small chains make unsteady clusters
    }
    os.chdir(folder)
    return load_settings()


if __name__ == "__main__":
    main()
