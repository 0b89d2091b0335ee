"""The API's access log: one JSON line per request, an audit store of which key read which guests.

Each line holds the time, the key id and its roles, method, route template (never the raw path), status,
duration, the client address, the scope a key was denied if any, and the customer ids the answer read:
our pseudonymous ids only, never names, contacts or facts. The API writes it (``serving/metering.py``);
``crm erase`` tombstones a person's ids in it (``erase_from_log``).

Every worker appends to the same file (``CRM_SERVING_ACCESS_LOG``), created with mode 0600. Each line is
one ``os.write`` on an ``O_APPEND`` descriptor, so lines of concurrent workers never interleave and no
lock is taken on the request path (``logging.FileHandler`` would do the same write, but cannot create
the file private, and a lock shared with the erasure would cost every request). ``erase_from_log``
overwrites a person's ids in place with tombstones of the same length, so lines being appended
meanwhile are neither moved nor lost.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm_analytics.warehouse.private_files import open_private

TOMBSTONE = "erased"
_TOMBSTONE_FILL = "-"


class AccessLog:
    """Append-only JSON lines in ``path`` (created 0600 at the first line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor: int | None = None

    def write(self, record: dict[str, Any]) -> None:
        """One line, one write (a few hundred bytes into the page cache: microseconds, on the loop)."""
        if self._descriptor is None:
            self._descriptor = open_private(self.path, os.O_WRONLY | os.O_APPEND)
        line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **record})
        os.write(self._descriptor, (line + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def tombstone_for(encoded: bytes) -> bytes:
    """The JSON string ``"erased---"`` as long as ``encoded`` (a quoted id), so offsets do not move."""
    inner = len(encoded) - 2
    return b'"' + (TOMBSTONE + _TOMBSTONE_FILL * inner).encode("ascii")[:inner] + b'"'


def erase_from_log(path: Path, customer_ids: Iterable[str]) -> int:
    """Replace every occurrence of the ids, as JSON strings, with tombstones; the number replaced."""
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    targets = [json.dumps(cid).encode("utf-8") for cid in set(customer_ids) if cid]
    replaced = 0
    descriptor = open_private(path, os.O_RDWR)
    try:
        with mmap.mmap(descriptor, 0) as mapped:  # the size now: lines appended later hold no old reads
            for target in targets:
                tombstone = tombstone_for(target)
                start = mapped.find(target)
                while start != -1:
                    mapped[start : start + len(target)] = tombstone
                    replaced += 1
                    start = mapped.find(target, start + len(target))
            mapped.flush()
    finally:
        os.close(descriptor)
    return replaced
