"""``crm run`` (the main job on the embedded defaults) and ``crm config`` (the settings in effect)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crm_analytics.cli.common import JsonOption, emit, handle_errors, progress_bar, render_rows, settings
from crm_analytics.cli.render import render_run
from crm_analytics.settings import settings_markdown


@handle_errors
def run(
    customers: Annotated[int, typer.Option(min=1, help="Guests in the generated demo chain.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed of the demo data.")] = 42,
    as_json: JsonOption = False,
) -> None:
    """The main job on the embedded defaults: demo data, ingest, profiles, features, train (CLV, churn,
    offers), register, promote, segments, scores into the serving store."""
    from crm_analytics.cli.ingest import render_ingest
    from crm_analytics.jobs import run as run_job

    try:
        with progress_bar() as progress:
            report = run_job.run(settings(), customers, seed, progress)
    except run_job.IngestRefusedError as exc:  # the batches' own report says what and why
        refused = exc.report
        emit({"ingest": refused.as_dict()}, as_json, lambda _: render_ingest(refused))
        raise
    emit(report, as_json, render_run)


@handle_errors
def show_config(
    docs_out: Annotated[
        Path | None,
        typer.Option("--docs-out", help="Write the settings reference (Markdown) here and exit."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The settings in effect (defaults, .env and CRM_* variables)."""
    if docs_out is not None:
        docs_out.write_text(settings_markdown())
        return
    values = settings().masked_dump()  # passwords in URLs never reach a terminal or a script's log
    rows = [{"setting": f"CRM_{k.upper()}", "value": x} for k, x in values.items()]
    emit(values, as_json, lambda v: render_rows("settings", rows))
