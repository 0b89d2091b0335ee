"""The daily refresh's history in the serving store (``refresh_runs``): a row when a refresh starts,
its outcome when it ends. ``crm status`` and the scheduler read it; the API could too. A refresh killed
mid-run leaves its row ``running``; the next refresh marks it ``interrupted``.

It lives in the serving store, not the warehouse: a DuckDB warehouse is held by the refresh that writes
it, while the store takes many readers and writers (SQLite WAL, PostgreSQL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update

from crm_analytics.store.records import now
from crm_analytics.store.tables import refresh_runs

RUNNING = "running"
FINISHED = ("succeeded", "unchanged", "failed", "interrupted")


@dataclass(frozen=True)
class RefreshRun:
    """One refresh: the day it served, when it ran, how it ended and its stages' reports."""

    run_id: str
    as_of: str
    started_at: str
    finished_at: str | None
    status: str
    fingerprint: dict[str, Any]
    report: dict[str, Any] | None
    error: str | None


class RefreshLog:
    """Start, finish and read refresh runs over the serving store's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, run_id: str, as_of: str, fingerprint: dict[str, Any]) -> None:
        """Record a refresh as running; any refresh still marked running died: mark it interrupted."""
        with self.engine.begin() as conn:
            conn.execute(
                update(refresh_runs)
                .where(refresh_runs.c.status == RUNNING)
                .values(status="interrupted", finished_at=now())
            )
            conn.execute(
                insert(refresh_runs).values(
                    run_id=run_id,
                    as_of=as_of,
                    started_at=now(),
                    status=RUNNING,
                    fingerprint=json.dumps(fingerprint, sort_keys=True),
                )
            )

    def progress(self, run_id: str, report: dict[str, Any]) -> None:
        """Record the stages a running refresh has finished (``crm status`` shows how far it got)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(refresh_runs)
                .where(refresh_runs.c.run_id == run_id)
                .values(report=json.dumps(report, default=str))
            )

    def finish(
        self,
        run_id: str,
        status: str,
        report: dict[str, Any] | None,
        *,
        error: str | None = None,
        fingerprint: dict[str, Any] | None = None,
        as_of: str | None = None,
    ) -> None:
        """Record how a refresh ended (``succeeded``, ``unchanged`` or ``failed``) and, when given, the
        fingerprint of what it left serving (a next run of the same day compares with it)."""
        if status not in FINISHED:
            raise ValueError(f"status: expected one of {', '.join(FINISHED)}, got {status!r}")
        values: dict[str, Any] = {
            "status": status,
            "finished_at": now(),
            "report": json.dumps(report, default=str) if report is not None else None,
            "error": error,
        }
        if fingerprint is not None:
            values["fingerprint"] = json.dumps(fingerprint, sort_keys=True)
        if as_of:  # a refresh of "the data's last day" knows the day once it has ingested
            values["as_of"] = as_of
        with self.engine.begin() as conn:
            conn.execute(update(refresh_runs).where(refresh_runs.c.run_id == run_id).values(**values))

    def runs(self, limit: int = 10) -> list[RefreshRun]:
        """The most recent refreshes, newest first."""
        query = select(refresh_runs).order_by(refresh_runs.c.started_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_run(row) for row in conn.execute(query).mappings()]

    def last_succeeded(self) -> RefreshRun | None:
        """The newest refresh that ended with a snapshot serving (succeeded or found nothing to change)."""
        query = (
            select(refresh_runs)
            .where(refresh_runs.c.status.in_(("succeeded", "unchanged")))
            .order_by(refresh_runs.c.started_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _run(row) if row is not None else None


def _run(row: Any) -> RefreshRun:
    return RefreshRun(
        run_id=row["run_id"],
        as_of=row["as_of"],
        started_at=row["started_at"].isoformat(),
        finished_at=row["finished_at"].isoformat() if row["finished_at"] else None,
        status=row["status"],
        fingerprint=json.loads(row["fingerprint"]),
        report=json.loads(row["report"]) if row["report"] else None,
        error=row["error"],
    )
