"""Waiting for a DuckDB file another process holds, and naming that process when we give up.

DuckDB lets one process open a file read-write, or several open it read-only, never both; a second
opener gets ``IOException: Could not set lock on file ...: Conflicting lock is held in <exe> (PID n)``.
``retry_locked`` retries with backoff until a deadline, then raises a ``BusyError`` naming the holder
by PID and, where ``/proc`` lets us read it, by its command (program and subcommand words only: the
options and values after them may hold personal data, e.g. ``crm profiles lookup --email``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb

from crm_analytics.errors import BusyError

T = TypeVar("T")
_PID = re.compile(r"\(PID (\d+)\)")
_WORD = re.compile(r"[A-Za-z][A-Za-z_.-]*")  # a subcommand, never an e-mail, phone or path
_FIRST_DELAY, _MAX_DELAY = 0.05, 1.0  # seconds: backoff doubles from the first to the largest step


def is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckDB refusing a file another process holds."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def retry_locked(open_: Callable[[], T], path: str, timeout: float) -> T:
    """``open_()``, retried with backoff while another process holds ``path``, for ``timeout`` seconds
    at most; then a ``BusyError`` naming the holder."""
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    while True:
        try:
            return open_()
        except duckdb.IOException as exc:
            if not is_lock_error(exc):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BusyError(busy_message(path, str(exc), timeout)) from None
            time.sleep(min(delay, remaining))
            delay = min(2 * delay, _MAX_DELAY)


def busy_message(path: str, duckdb_message: str, waited: float) -> str:
    """One line: which file, which process holds it, how long we waited, what to do."""
    found = _PID.search(duckdb_message)
    holder = ""
    if found:
        command = holder_command(int(found.group(1)))
        holder = f" (PID {found.group(1)}{': ' + command if command else ''})"
    return (
        f"warehouse: {path} is in use by another process{holder}; waited {waited:g} s "
        "(CRM_WAREHOUSE_LOCK_TIMEOUT). DuckDB allows one writer process: try again when it has finished; "
        "readers use the published copy, and PostgreSQL (CRM_WAREHOUSE_URL) serves many users"
    )


def holder_command(pid: int) -> str | None:
    """The program and subcommand words of process ``pid`` (``crm refresh``, ``ipykernel_launcher``),
    or None when ``/proc`` does not tell (another user's process, another OS)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    argv = [arg for arg in raw.decode(errors="replace").split("\0") if arg]
    return describe_command(argv) if argv else None


def describe_command(argv: list[str]) -> str:
    """``python /venv/bin/crm refresh --as-of ...`` -> ``crm refresh``; ``python -m x.y a`` -> ``x.y a``."""
    program, rest = Path(argv[0]).name, argv[1:]
    if program.startswith("python") and rest:
        if rest[0] == "-m" and len(rest) > 1:
            program, rest = rest[1], rest[2:]
        elif not rest[0].startswith("-"):
            program, rest = Path(rest[0]).name, rest[1:]
    words = [program]
    for arg in rest[:2]:  # at most two subcommand words (crm profiles show)
        if not _WORD.fullmatch(arg):
            break
        words.append(arg)
    return " ".join(words)
