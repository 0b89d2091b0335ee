"""One day's work as one job (``crm refresh``): what is new in the incoming folder ingested, customers
re-linked when their records changed, features, segments and scores as of the data's last day (one
atomic snapshot), the API's feedback settled into the offer log, and the warehouse's read copy published
for notebooks and the reading commands. Models are not retrained here.

Re-running a day changes nothing: a refresh whose day, data (the accepted ingest batches) and champions
equal those of the last successful one is recorded as ``unchanged`` and writes no snapshot. A refresh
killed mid-run leaves the previous snapshot serving (the switch is atomic) and its history row
``running``; the next refresh marks it ``interrupted`` and does the whole day again. Every run is
recorded in the serving store's ``refresh_runs`` (``store.refresh_log``), which ``crm status`` reads.

The stages are plain functions over an open warehouse and serving store (``STAGES``), so the Dagster
assets (``crm_analytics.orchestration``) run the same code one stage at a time (``run_stage``), between
``start_run`` (ingest, the day resolved once, the history row) and ``finish_run``.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from crm_analytics.errors import CrmError, InvalidInputError, NotReadyError
from crm_analytics.features.store import read_features
from crm_analytics.ingest.contracts import EVENT_TIMES
from crm_analytics.ingest.readers import SUPPORTED_SUFFIXES, file_sha256
from crm_analytics.jobs import features, ingest, score
from crm_analytics.jobs.common import Progress, no_progress, open_store, open_warehouse
from crm_analytics.jobs.feedback import collect_feedback
from crm_analytics.jobs.monitor import watch
from crm_analytics.models import registry
from crm_analytics.models.gate import champion_map, champion_version
from crm_analytics.models.segments.assign import assign_segments
from crm_analytics.models.segments.build import build_segments
from crm_analytics.monitoring import data_quality
from crm_analytics.profiles.build import build_profiles
from crm_analytics.profiles.tables import LINKS, MODEL
from crm_analytics.settings import Settings
from crm_analytics.store import RefreshLog, ServingStore, Snapshot
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse, publish_read_copy

log = logging.getLogger("crm_analytics.refresh")


@dataclass
class Day:
    """What the stages share: the open warehouse and store, the settings, the day being refreshed."""

    settings: Settings
    warehouse: Warehouse
    store: ServingStore
    as_of: date | None
    progress: Progress = no_progress
    reports: dict[str, Any] = field(default_factory=dict)

    @property
    def day(self) -> date:
        if self.as_of is None:
            self.as_of = data_end(self.warehouse)
        return self.as_of


@dataclass(frozen=True)
class RefreshReport:
    """How a refresh ended, for which day, and what each stage did (counts and versions only)."""

    run_id: str
    as_of: str
    status: str  # succeeded | unchanged
    snapshot_id: str | None
    models: dict[str, str]
    stages: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest_stage(day: Day) -> dict[str, Any]:
    """Ingest every file in the incoming folder not ingested before (by content): nothing twice."""
    folder = day.settings.incoming
    files = incoming_files(day.settings)
    seen = ingested_digests(day.warehouse)
    new = [f for f in files if file_sha256(f) not in seen]
    report = ingest.ingest_files(day.warehouse, day.settings, new, day.progress).as_dict()
    checks = data_quality.record(day.warehouse, day.settings, day.day)  # [] when nothing new came
    quality = {"checks": len(checks), "breaches": [c.as_dict() for c in checks if c.breach]}
    return report | {
        "files_seen": len(files),
        "files_new": len(new),
        "folder": str(folder),
        "quality": quality,
    }


def profiles_stage(day: Day) -> dict[str, Any]:
    """When customer records arrived since the last profile build, re-link the customers they touch
    with the stored linkage model (ids stay stable; merges and splits are recorded). A chain that
    delivers no customer records (transactions only) has nothing to link: its ids are the sources'."""
    if not has_customer_records(day.warehouse):
        return {"relinked": False, "customer_records": 0}
    if not relink_needed(day.warehouse):
        return {"relinked": False}
    day.progress("linking customer records")
    # no MLflow run a day: the refresh history keeps the counts; a full `crm profiles build` logs
    built = build_profiles(day.warehouse, day.settings, incremental=True, log_run=False)
    return {"relinked": True} | built.as_dict()


def features_stage(day: Day) -> dict[str, Any]:
    """Purchase-history features as of the day (no labels: the future is not in the data yet)."""
    day.progress(f"building features as of {day.day}")
    return features.build_in(day.warehouse, day.settings, day.day).as_dict()


def segments_stage(day: Day) -> dict[str, Any]:
    """Everyone assigned to the champion segment definitions; the first time, the definitions are fitted
    and registered (``crm segments build``). A family whose build was refused (unstable clusters) stays
    out until a ``crm segments build`` registers it: a refresh does not refit every day."""
    day.progress("assigning segments")
    table = read_features(day.warehouse, day.day)
    client = configure(day.settings)
    if any(champion_version(client, f.name) for f in registry.segmentations()):
        return assign_segments(day.settings, day.warehouse, table, day.day)
    return build_segments(day.settings, day.warehouse, table, day.day, status=day.progress)


def scores_stage(day: Day) -> dict[str, Any]:
    """Every customer scored by the champions into one new serving snapshot (an atomic switch)."""
    return score.score_all(day.settings, day.warehouse, day.store, day.day, progress=day.progress).as_dict()


def monitor_stage(day: Day) -> dict[str, Any]:
    """Drift of the day's purchases, features and scores, the realized performance of every scored day
    whose horizon has closed, and the day's report logged to MLflow (``jobs.monitor``). Its failure (an
    unreachable MLflow, say) is reported as the stage's ``error``, not raised: the day is served."""
    day.progress("monitoring drift and realized performance")
    try:
        return watch(day.settings, day.warehouse, day.store, day.day).as_dict()
    except Exception as exc:  # the new snapshot serves already: watching it failing must not undo the day
        log.warning("monitor stage failed: %s", _one_line(exc))
        return {"error": _one_line(exc)}


def feedback_stage(day: Day) -> dict[str, Any]:
    """The API's shown offers and their answers settled into the offer log (never twice)."""
    return collect_feedback(day.store, day.warehouse, day.settings).as_dict()


def publish_stage(day: Day) -> dict[str, Any]:
    """The read copy notebooks and the reading commands open, swapped in whole (DuckDB only)."""
    path = publish_read_copy(day.warehouse, day.settings)
    return {"read_copy": str(path) if path else None}


STAGES: dict[str, Callable[[Day], dict[str, Any]]] = {
    "ingest": ingest_stage,
    "profiles": profiles_stage,
    "features": features_stage,
    "segments": segments_stage,
    "scores": scores_stage,
    "monitor": monitor_stage,
    "feedback": feedback_stage,
    "publish": publish_stage,
}
RESCORE = (
    "segments",
    "scores",
    "monitor",
    "publish",
)  # after a promotion: the served day with the new champions


def refresh(
    settings: Settings,
    as_of: date | None = None,
    *,
    only: tuple[str, ...] | None = None,
    progress: Progress = no_progress,
) -> RefreshReport:
    """Run the day's stages (all, or ``only`` these) as of ``as_of`` (default: the data's last day).

    Recorded from the start (a crash or a kill in any stage leaves a trace); a run of ``only`` some
    stages (a rescore) never counts as the whole day, so the next refresh does the day in full."""
    unknown = sorted(set(only or ()) - set(STAGES))
    if unknown:
        raise InvalidInputError(f"stages: unknown {', '.join(unknown)}; expected {', '.join(STAGES)}")
    store = open_store(settings)
    log = RefreshLog(store.engine)
    run_id = uuid.uuid4().hex
    kind = "full" if only is None else "partial"
    with open_warehouse(settings) as warehouse:  # one writer: a second refresh waits here
        day = Day(settings, warehouse, store, as_of, progress)
        log.start(run_id, str(as_of or ""), {"kind": kind})
        stages = [name for name in STAGES if only is None or name in only]
        name = stages[0] if stages else "start"
        try:
            if stages and stages[0] == "ingest":
                day.reports["ingest"] = timed(ingest_stage, day)
                log.progress(run_id, day.reports)
                stages = stages[1:]
            before = fingerprint(day, kind)
            active = store.active()
            if kind == "full" and active and unchanged(day, log, before, active):
                for name in ("feedback", "publish"):
                    day.reports[name] = timed(STAGES[name], day)
                log.finish(run_id, "unchanged", day.reports, as_of=str(day.day), fingerprint=before)
                return _report(run_id, day, "unchanged", active.snapshot_id, active.models)
            for name in stages:
                day.reports[name] = timed(STAGES[name], day)
                log.progress(run_id, day.reports)
        except BaseException as exc:
            error = f"{name}: {_one_line(exc)}"
            log.finish(run_id, "failed", day.reports, error=error, as_of=str(day.as_of or ""))
            raise
        active = store.active()
        served = active.models if active else {}
        # what the snapshot was made with, not what the aliases say now: a champion moved meanwhile
        # is then rescored by the next refresh
        made_with = before | {"champions": before["champions"] | served}
        log.finish(run_id, "succeeded", day.reports, as_of=str(day.day), fingerprint=made_with)
    return _report(run_id, day, "succeeded", active.snapshot_id if active else None, served)


def run_stage(
    settings: Settings, name: str, as_of: date | None = None, progress: Progress = no_progress
) -> dict[str, Any]:
    """One stage on its own (a Dagster asset): opens the warehouse and the store, runs it, reports."""
    if name not in STAGES:
        raise InvalidInputError(f"stage: unknown {name!r}; expected one of {', '.join(STAGES)}")
    with open_warehouse(settings) as warehouse:
        return STAGES[name](Day(settings, warehouse, open_store(settings), as_of, progress))


@dataclass(frozen=True)
class StagedRun:
    """A refresh run one stage at a time (the Dagster assets, ``crm_analytics.orchestration``): its id
    in the history, the day every stage works on, whether there is nothing to redo, the reports so far."""

    run_id: str
    as_of: date
    unchanged: bool
    reports: dict[str, Any]

    def with_report(self, stage: str, report: dict[str, Any]) -> StagedRun:
        return replace(self, reports=self.reports | {stage: report})


def start_run(
    settings: Settings, run_id: str, as_of: date | None = None, progress: Progress = no_progress
) -> StagedRun:
    """A staged run's first step: recorded as running, what is new ingested, the day resolved once
    (default: the data's last day, after the ingest). ``unchanged`` as in ``refresh``: the day, data and
    champions equal the last successful refresh's, so only feedback and publishing are left."""
    store = open_store(settings)
    log = RefreshLog(store.engine)
    with open_warehouse(settings) as warehouse:
        day = Day(settings, warehouse, store, as_of, progress)
        log.start(run_id, str(as_of or ""), {"kind": "full"})
        ingested = timed(ingest_stage, day)
        before = fingerprint(day)
        same = unchanged(day, log, before, store.active())
    log.progress(run_id, {"ingest": ingested})
    return StagedRun(run_id, day.day, same, {"ingest": ingested})


def finish_run(settings: Settings, run: StagedRun) -> str:
    """A staged run's last step: recorded ``unchanged``, or ``succeeded`` with the fingerprint of what
    it left serving (the next run of the same day compares with it). Returns the status."""
    store = open_store(settings)
    log = RefreshLog(store.engine)
    status = "unchanged" if run.unchanged else "succeeded"
    with open_warehouse(settings) as warehouse:
        after = fingerprint(Day(settings, warehouse, store, run.as_of))
    active = store.active()
    made_with = after | {"champions": after["champions"] | (active.models if active else {})}
    log.finish(run.run_id, status, run.reports, as_of=str(run.as_of), fingerprint=made_with)
    return status


def fail_run(settings: Settings, run_id: str, stage: str, exc: BaseException) -> None:
    """A staged run's stage failed for good (after its retries): the run recorded ``failed``."""
    RefreshLog(open_store(settings).engine).finish(run_id, "failed", None, error=f"{stage}: {_one_line(exc)}")


def rescore(settings: Settings, progress: Progress = no_progress) -> RefreshReport | None:
    """The served day scored again with the current champions (after ``crm promote``); None when
    nothing is served yet."""
    active = open_store(settings).active()
    if active is None:
        return None
    return refresh(settings, date.fromisoformat(active.as_of), only=RESCORE, progress=progress)


def data_end(warehouse: Warehouse) -> date:
    """The last day of data: the latest purchase or customer-record update in the warehouse."""
    ends = []
    for table, column in EVENT_TIMES.items():
        if warehouse.has_table(table):
            value = warehouse.fetch(f'SELECT MAX("{column}") AS end_at FROM "{table}"')["end_at"][0]
            if value is not None and not pd.isna(value):
                ends.append(pd.Timestamp(value).date())
    if not ends:
        raise NotReadyError("warehouse: no transactions or customer records yet; ingest some first")
    return max(ends)


def ingested_digests(warehouse: Warehouse) -> set[str]:
    """The content hashes of every file accepted so far."""
    if not warehouse.has_table("ingest_batches"):
        return set()
    frame = warehouse.fetch("SELECT DISTINCT file_sha256 FROM ingest_batches")
    return {str(d) for d in frame["file_sha256"].dropna()}


def has_customer_records(warehouse: Warehouse) -> bool:
    """Whether any customer record was ever accepted (a transactions-only chain has none)."""
    return warehouse.has_table("customer_records") and warehouse.count("customer_records") > 0


def relink_needed(warehouse: Warehouse) -> bool:
    """Whether customer records were accepted after the last profile build or re-link (or there is
    none): the latest of the linkage model's build and any link's time."""
    if not warehouse.has_table(MODEL) or warehouse.count(MODEL) == 0:
        return True
    built = warehouse.fetch(f'SELECT MAX(built_at) AS at FROM "{MODEL}"')["at"][0]
    linked = warehouse.fetch(f'SELECT MAX(linked_at) AS at FROM "{LINKS}"')["at"][0]
    marker = max(pd.Timestamp(t) for t in (built, linked) if t is not None and not pd.isna(t))
    newer = warehouse.fetch(
        "SELECT COUNT(*) AS n FROM ingest_batches WHERE table_name = 'customer_records' "
        f"AND rows_new > 0 AND finished_at > TIMESTAMP '{marker.isoformat(sep=' ')}'"
    )["n"][0]
    return int(newer) > 0


def fingerprint(day: Day, kind: str = "full") -> dict[str, Any]:
    """What a day's snapshot depends on: the day, the data's batches that added rows (not the API's
    feedback, which changes no score), every champion a snapshot is made with, and whether the run
    did the whole day (``kind`` full) or some stages (partial: never taken for the whole day)."""
    batches = day.warehouse.fetch(
        "SELECT batch_id FROM ingest_batches WHERE table_name <> 'offer_log' AND rows_new > 0 "
        "ORDER BY batch_id"
    )["batch_id"]
    digest = hashlib.sha256("\n".join(map(str, batches)).encode()).hexdigest()
    client = configure(day.settings)
    families = [f for f in registry.FAMILIES if f.score or f.served or f.segmentation]
    champions = champion_map(client, families)
    return {"as_of": str(day.day), "batches": digest, "champions": champions, "kind": kind}


def unchanged(day: Day, log: RefreshLog, before: dict[str, Any], active: Snapshot | None) -> bool:
    """Whether the last successful refresh did this whole day from the same data and champions, and the
    served snapshot is of this day, made by the champions of now (not, say, by a ``crm score`` since)."""
    if active is None or active.as_of != str(day.day):
        return False
    last = log.last_succeeded()
    now = before["champions"]
    same_makers = all(now.get(name) == version for name, version in active.models.items())
    return bool(last and last.fingerprint == before and same_makers)


def _report(
    run_id: str, day: Day, status: str, snapshot_id: str | None, models: dict[str, str]
) -> RefreshReport:
    return RefreshReport(run_id, str(day.day), status, snapshot_id, models, day.reports)


def timed(stage: Callable[[Day], dict[str, Any]], day: Day) -> dict[str, Any]:
    """A stage's report with the seconds it took."""
    started = time.perf_counter()
    report = stage(day)
    return report | {"seconds": round(time.perf_counter() - started, 3)}


def _one_line(exc: BaseException) -> str:
    """A typed error's own message (written for users, no personal data); else only the error's type."""
    if isinstance(exc, CrmError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return type(exc).__name__


def incoming_files(settings: Settings) -> list[Path]:
    """Every CSV and Parquet file under the incoming folder and its subfolders (one per delivery, say),
    in path order; names starting with a dot are skipped, so a delivery written beside and renamed into
    place is never read half-written. The Dagster sensor watches their names, sizes and times."""
    folder = settings.incoming
    if not folder.is_dir():
        return []
    found = (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(folder).parts))
