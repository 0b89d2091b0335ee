"""``crm refresh`` (one day's work), ``crm status`` (what is served, by which models, the last
refreshes) and ``crm monitor`` (is anything watched in breach): the commands a scheduler and an
operator use every day."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from crm_analytics.cli.common import (
    JsonOption,
    day_option,
    emit,
    err,
    handle_errors,
    out,
    progress_bar,
    settings,
)

if TYPE_CHECKING:
    from crm_analytics.jobs.monitor import MonitorReport
    from crm_analytics.jobs.refresh import RefreshReport
    from crm_analytics.jobs.status import StatusReport


@handle_errors
def refresh(
    as_of: Annotated[date | None, day_option("Day to serve (default: the data's last day).")] = None,
    as_json: JsonOption = False,
) -> None:
    """One day's work: ingest what is new in the incoming folder, re-link, features, segments and scores
    as of the data's last day (one atomic snapshot), feedback settled. Running a day twice changes nothing."""
    from crm_analytics.jobs.refresh import refresh as refresh_job

    with progress_bar() as progress:
        report = refresh_job(settings(), as_of, progress=progress)
    emit(report, as_json, render_refresh)


@handle_errors
def status(
    refreshes: Annotated[int, typer.Option(min=1, max=100, help="How many recent refreshes to list.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """The served snapshot's day, the model versions that made it, the champions, the last refreshes."""
    from crm_analytics.jobs.status import status as status_job

    emit(status_job(settings(), refreshes), as_json, render_status)


BREACH_EXIT = 3  # something watched is in breach (1 stays "the command failed")


@handle_errors
def monitor(as_json: JsonOption = False) -> None:
    """The latest state of what watches the data and the models: each source's data quality on the last
    refreshed day against its trailing baseline, the drift of its purchases, features and scores, and the
    realized performance of the latest scored day whose horizon has closed. Exits 3 when anything is in
    breach (0 when all hold or are still learning their baseline)."""
    from crm_analytics.jobs.monitor import monitor as monitor_job

    report = monitor_job(settings())
    emit(report, as_json, render_monitor)
    if report.status == "breach":
        raise typer.Exit(BREACH_EXIT)


def render_monitor(report: MonitorReport) -> None:
    if report.as_of is None:
        out.print("no refresh has checked data quality yet: `crm refresh` (or `crm run`) first")
        return
    learning = sum(c.baseline is None for c in report.checks)
    out.print(
        f"data quality as of {report.as_of}: {len(report.checks)} checks, {len(report.breaches)} in breach"
        + (f", {learning} still learning their baseline" if learning else "")
    )
    for check in report.breaches:
        where = check.table_name if check.source == "*" else f"{check.table_name}/{check.source}"
        err.print(f"  breach: {where} {check.check_name}: {check.detail}")
    if report.drift:
        drifted = [c for c in report.drift if c.breach]
        out.print(
            f"drift as of {report.drift[0].as_of}: {len(report.drift)} checks, {len(drifted)} in breach"
        )
        for c in drifted:
            err.print(f"  breach: {c.view} {c.name} against {c.reference}: {c.detail}")
    latest = report.latest_realized()
    if not latest:
        out.print("realized performance: no scored day has reached the end of its horizon yet")
    for row in latest:
        shown = f"{row.value:.3f}" + ("" if row.baseline is None else f" (expected {row.baseline:.3f})")
        line = f"realized {row.model} v{row.version} scored {row.scored_as_of}: {row.metric} {shown}"
        (err if row.breach else out).print(("  breach: " if row.breach else "") + line)


def render_refresh(report: RefreshReport) -> None:
    ingested = report.stages.get("ingest", {})
    if ingested:
        out.print(
            f"ingest: {ingested['files_new']} new of {ingested['files_seen']} files in {ingested['folder']}"
        )
        for batch in ingested["batches"]:
            if batch["status"] != "accepted":  # the day goes on with what was accepted; this is not lost
                err.print(f"  {batch['source_file']}: {batch['status']}: {batch.get('message', '')}")
    if report.status == "unchanged":
        out.print(
            f"as of {report.as_of}: nothing changed since the last refresh; "
            f"snapshot {report.snapshot_id} serves"
        )
        return
    scored = report.stages.get("scores", {})
    out.print(
        f"as of {report.as_of}: {scored.get('customers', 0):,} customers in snapshot {report.snapshot_id}"
    )
    out.print("models: " + ", ".join(f"{name} v{version}" for name, version in sorted(report.models.items())))


def render_status(report: StatusReport) -> None:
    served = report.served
    if served is None:
        out.print("served: nothing yet (run `crm run`, or `crm refresh` after training)")
    else:
        out.print(
            f"served: as of {served['as_of']}, {served['customers']:,} customers, made {served['created_at']}"
        )
        out.print("  by " + ", ".join(f"{n} v{v}" for n, v in sorted(served["models"].items())))
    for name in report.pending:
        out.print(f"  {name}: champion is now v{report.champions[name]}; the next refresh rescores")
    last = report.last_refresh
    if last is None:
        out.print("refreshes: none yet")
        return
    out.print(f"last refresh: {last['status']} as of {last['as_of']} (started {last['started_at']})")
    if last["refused_files"]:
        out.print(f"  {last['refused_files']} incoming file(s) refused; `crm refresh --json` lists them")
    if last["status"] == "running":
        out.print("  done: " + (", ".join(last["stages_done"]) or "nothing yet"))
    if last["error"]:
        out.print(f"  error: {last['error']}")
