"""One writer at a time on a PostgreSQL warehouse: a second writer waits up to the lock timeout, then
is told which backend holds it; readers never wait; the lock is re-entrant within a thread."""

from __future__ import annotations

import threading
import time

import pytest

from crm_analytics.errors import BusyError
from crm_analytics.jobs.common import open_reader, open_warehouse
from crm_analytics.settings import load_settings
from crm_analytics.warehouse.writer_lock import writer_lock

pytestmark = pytest.mark.postgres


def test_a_second_writer_waits_then_names_the_holder(postgres_url: str) -> None:
    settings = load_settings(warehouse_url=postgres_url, warehouse_lock_timeout=1.0)
    with open_warehouse(settings):  # a writer migrates the schema readers need
        pass
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer_lock(postgres_url, 0, "crm refresh"):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with (
            pytest.raises(
                BusyError, match=r"another writer holds .*backend PID \d+: crm refresh\); waited 1 s"
            ),
            open_warehouse(settings),
        ):
            pass
        assert time.monotonic() - started >= 1.0
        with open_reader(settings) as reader:  # readers never wait
            assert reader.backend == "postgres"
    finally:
        release.set()
        holder.join(10)
    # released: the next writer goes in at once; re-entrant: a job inside another's hold
    with open_warehouse(settings) as warehouse, open_warehouse(settings) as inner:
        assert inner.backend == warehouse.backend == "postgres"
