"""``crm data demo|cdnow``: the bundled datasets as raw input files."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crm_analytics.cli.common import (
    JsonOption,
    day_option,
    emit,
    handle_errors,
    out,
    parse_day,
    progress_bar,
    settings,
)

if TYPE_CHECKING:
    from crm_analytics.jobs.data import DataReport

app = typer.Typer(help="Build the bundled datasets in the raw input format.", no_args_is_help=True)


@app.command("cdnow")
@handle_errors
def cdnow(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write transactions.csv and items to.")],
    variant: Annotated[str, typer.Option(help="sample (2,357 customers) or master (23,570).")] = "sample",
    as_json: JsonOption = False,
) -> None:
    """Convert the CDNOW data shipped in the lifetimes wheel into the raw transactions contract."""
    from crm_analytics.jobs import data

    emit(data.cdnow_data(out_dir, variant), as_json, render_files)


@app.command("demo")
@handle_errors
def demo(
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the raw files; ground truth in OUT/truth.")
    ] = None,
    incoming: Annotated[
        bool,
        typer.Option(
            "--incoming",
            help="Instead of --out: deliver the --from/--until window into the incoming folder "
            "(CRM_INCOMING_DIR/<day>) for `crm refresh`, whole or not at all; ground truth kept apart.",
        ),
    ] = False,
    customers: Annotated[int, typer.Option(min=1, help="Number of guests (people) to simulate.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    start: Annotated[
        date | None,
        typer.Option(
            "--from",
            help="Write only rows dated from this day (default: the demo's start, 2023-01-01).",
            parser=parse_day,
            metavar="YYYY-MM-DD",
        ),
    ] = None,
    until: Annotated[
        date | None,
        day_option("Write only rows dated up to this day (default: the demo's end, 2025-12-31)."),
    ] = None,
    shifts: Annotated[
        list[str] | None,
        typer.Option(
            "--shift",
            help="DATE:KIND, a change from that day on; KIND is price (room revenue x1.25), channel "
            "(direct bookings go through OTAs) or churn (half the returning guests stop). Repeatable.",
            metavar="DATE:KIND",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Generate the synthetic hotel-chain dataset, whole or one window of it (docs: datasets).

    --from/--until keep the rows dated within those days; the windows of one seed add up to its run.
    """
    from crm_analytics.errors import InvalidInputError
    from crm_analytics.jobs import data

    if incoming == (out_dir is not None):
        raise InvalidInputError("--out: give a folder, or --incoming (not both)")
    if incoming and (start is None or until is None or fmt != "parquet"):
        raise InvalidInputError("--incoming: needs --from and --until (and Parquet, the default format)")
    with progress_bar() as progress:
        if incoming:
            assert start is not None
            assert until is not None
            report = data.demo_increment(
                settings().incoming, start, until, customers, seed, shifts or (), progress
            )
        else:
            assert out_dir is not None
            report = data.demo_data(
                out_dir, customers, seed, fmt, progress, start=start, until=until, shifts=shifts or ()
            )
    emit(report, as_json, render_files)


def render_files(report: DataReport) -> None:
    for path in report.files:
        out.print(path)
