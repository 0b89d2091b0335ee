"""Files of the data folder that hold personal data or secrets are the owner's alone (mode 0600).

The ``crm`` command also runs with umask 077 (``cli.main``), which covers everything it writes; these
helpers make the databases and logs private for library callers (notebooks, the API workers) too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE = 0o600


def open_private(path: Path, flags: int) -> int:
    """A descriptor on ``path``, created with mode 0600 (and made 0600 if someone loosened it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, flags | os.O_CREAT, PRIVATE)
    os.fchmod(descriptor, PRIVATE)
    return descriptor


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (SQLite takes an empty file as a new
    database, and gives its -wal and -shm files the database file's mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
