"""What every ``crm`` command shares: settings, JSON or rich output, a progress bar, one date type and
one error decorator that turns typed errors into an exit code and one line on stderr.

Exit codes: 0 ok, 1 refused or failed (a refused batch, a missing prerequisite, a busy warehouse, an
unwritable file, any other library error), 2 bad usage (a bad option value or setting:
``InvalidInputError``, ``SettingsError`` and the parser's own errors). No Python traceback reaches the
user for any of these; an unexpected error is one line naming its type, with the traceback only under
``CRM_DEBUG=1``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crm_analytics.errors import CrmError
from crm_analytics.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from crm_analytics.jobs.common import Progress as JobProgress

err = Console(stderr=True)
out = Console()
P = ParamSpec("P")
R = TypeVar("R")


def parse_day(value: str) -> date:
    """A date option: YYYY-MM-DD, or a usage error saying so."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected a date as YYYY-MM-DD, got {value!r}") from None


JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def day_option(help_text: str) -> Any:
    """A required date option (``--as-of`` and friends) with the one date parser."""
    return typer.Option(help=help_text, parser=parse_day, metavar="YYYY-MM-DD")


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    err.print(message, style="red" if code else None, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Map the errors a command can meet to an exit code and one line (see the module docstring)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except SettingsError as exc:
            fail(str(exc), 2)
        except CrmError as exc:  # typed: its own exit code (InvalidInputError: 2, bad usage)
            fail(str(exc), exc.exit_code)
        except (ValueError, LookupError) as exc:  # the library refused or found nothing: failed
            fail(str(exc), 1)
        except OSError as exc:  # an unwritable or missing file
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", 1)
        except Exception as exc:
            if os.environ.get("CRM_DEBUG") == "1":
                raise
            # the type only: an unexpected error's text may quote a value (a key, an e-mail)
            fail(f"failed: {type(exc).__name__} (set CRM_DEBUG=1 for the traceback)", 1)

    return wrapper


def settings() -> Settings:
    """Load settings once per command; a bad value is a SettingsError naming it (exit 2)."""
    return load_settings()


def emit(result: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print ``result`` (a report with ``as_dict`` or plain data) as JSON on stdout, or render it."""
    if as_json:
        data = result.as_dict() if hasattr(result, "as_dict") else result
        typer.echo(json.dumps(data, indent=2, default=str))
    elif render is not None:
        render(result)


@contextmanager
def progress_bar() -> Iterator[JobProgress]:
    """A progress bar on stderr, as the callback a job reports through."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,  # gone when the job ends: the result (or the one-line error) is what stays
    )
    with bar:
        task = bar.add_task("starting", total=None)

        def report(stage: str, done: float | None = None, total: float | None = None) -> None:
            bar.update(task, description=stage, completed=done or 0, total=total)

        yield report


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
