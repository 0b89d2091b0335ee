"""Publish the read-only copy of a DuckDB warehouse that notebooks and the reading commands open
(``crm warehouse publish``; ``crm run`` and the refresh publish it at their end, ``crm erase`` after
an erasure so the person leaves the copy too)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from crm_analytics.jobs.common import open_reader, open_warehouse
from crm_analytics.settings import Settings
from crm_analytics.warehouse import publish_read_copy
from crm_analytics.warehouse.read_copy import read_copy_info


@dataclass(frozen=True)
class PublishReport:
    """Where the copy went (None: PostgreSQL, read directly), when, the data's last day, the seconds."""

    backend: str
    path: str | None
    published_at: str | None
    as_of: str | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def publish(settings: Settings) -> PublishReport:
    """Publish a consistent copy of the warehouse for readers, swapped in atomically (a no-op on
    PostgreSQL, whose readers read the warehouse itself)."""
    started = time.perf_counter()
    with open_warehouse(settings) as warehouse:
        path = publish_read_copy(warehouse, settings)
    seconds = round(time.perf_counter() - started, 3)
    if path is None:
        return PublishReport(warehouse.backend, None, None, None, seconds)
    with open_reader(settings) as reader:
        info = read_copy_info(reader) or {}
    return PublishReport("duckdb", str(path), info.get("published_at"), info.get("as_of"), seconds)
