"""``crm segments build|list|export``: marketing segments."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from crm_analytics.cli.common import (
    JsonOption,
    day_option,
    emit,
    handle_errors,
    out,
    progress_bar,
    render_rows,
    settings,
)
from crm_analytics.cli.render import render_segments_build

app = typer.Typer(help="Customer segments for marketing: build, list, export.", no_args_is_help=True)


@app.command("build")
@handle_errors
def build(
    as_of: Annotated[date, day_option("Cutoff of a stored feature build.")],
    seed: Annotated[int, typer.Option(help="Seed of the behavioural clusters.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Fit RFM, value-and-risk and behavioural segments, register their definitions, store membership."""
    from crm_analytics.jobs import segments

    with progress_bar() as progress:
        report = segments.build(settings(), as_of, seed, progress)
    emit(report, as_json, render_segments_build)


@app.command("list")
@handle_errors
def list_segments(
    plots: Annotated[Path | None, typer.Option(help="Folder for one profile plot per family.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every segment: customers, share, mean CLV and churn, definition version, cutoff."""
    from crm_analytics.jobs import segments

    emit(segments.list_segments(settings(), plots), as_json, lambda r: render_rows("segments", r.segments))


@app.command("export")
@handle_errors
def export(
    name: Annotated[str, typer.Argument(help="Segment name, as `crm segments list` shows it.")],
    out_file: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    min_clv: Annotated[float | None, typer.Option(help="Only customers with at least this CLV.")] = None,
    max_churn: Annotated[
        float | None, typer.Option(help="Only customers with at most this churn probability.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Export a segment's customers who gave marketing consent; says how many were left out and why."""
    from crm_analytics.jobs import segments

    report = segments.export(settings(), name, out_file, fmt, min_clv, max_churn)
    emit(
        report,
        as_json,
        lambda r: out.print(
            f"{r.exported:,} customers of {r.segment!r} (as of {r.as_of}) written to {r.path}; left out: "
            f"{r.left_out_no_consent:,} without marketing consent, {r.left_out_by_filters:,} by filters"
        ),
    )
