"""What every ``crm`` command shares: settings loading, JSON or rich output, progress bars."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crm_analytics.settings import Settings, SettingsError, load_settings

err = Console(stderr=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def settings() -> Settings:
    """Load settings once per command; a bad value stops the command with the setting's name."""
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def emit(result: Any, as_json: bool, render: Any = None) -> None:
    """Print ``result`` as JSON on stdout, or call ``render`` for people."""
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    elif render is not None:
        render(result)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


out = Console()


def out_console() -> Console:
    """The stdout console, for commands whose --out option shadows the name ``out``."""
    return out


def render_rows(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for column in rows[0] if rows else []:
        table.add_column(column, justify="right" if isinstance(rows[0][column], int | float) else "left")
    for row in rows:
        table.add_row(*(cell(v) for v in row.values()))
    out.print(table)


def cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
