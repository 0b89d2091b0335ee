"""What every job shares: opening the warehouse and the serving store with their schemas current, and
the progress callback a job reports through (the CLI draws it; notebooks and the scheduler may not)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore
from crm_analytics.warehouse import Warehouse, migrations


class Progress(Protocol):
    """``progress(stage, done, total)``: what the job is doing now, and how far it is (when it knows)."""

    def __call__(self, stage: str, done: float | None = None, total: float | None = None) -> None: ...


def no_progress(stage: str, done: float | None = None, total: float | None = None) -> None:
    """The default: report nothing."""


@contextmanager
def open_warehouse(settings: Settings) -> Iterator[Warehouse]:
    """The configured warehouse with its schema brought up to date (``warehouse.migrations``)."""
    with Warehouse(settings.warehouse_url) as warehouse:
        migrations.upgrade(warehouse)
        yield warehouse


def open_store(settings: Settings) -> ServingStore:
    """The configured serving store, its schema brought up to date (``store.migrations``)."""
    return ServingStore(settings.serving_store_url).upgrade()
