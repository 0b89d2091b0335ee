"""The name index across snapshots: a new snapshot's index is built in the background while the previous
one keeps answering, so the desk does not lose name look-ups after each daily refresh."""

from __future__ import annotations

import threading
import time
from typing import Any

import pandas as pd

from crm_analytics.profiles.lookup import Match
from crm_analytics.serving.guest_lookup import NameIndex
from crm_analytics.store import NameLookupData, ServingStore
from tests.serving.conftest import Served

NEXT = "the-next-snapshot"


class HeldStore(ServingStore):
    """The served store, whose name data for ``NEXT`` (the active snapshot's without the records of
    ``gone``, a guest erased in between) is handed over only once ``release`` is set: a build that
    takes as long as the test wants."""

    def __init__(self, url: str, gone: str) -> None:
        super().__init__(url)
        self.release = threading.Event()
        self.gone = gone

    def name_lookup(self, snapshot_id: str) -> NameLookupData | None:
        if snapshot_id != NEXT:
            return super().name_lookup(snapshot_id)
        self.release.wait(timeout=60)
        found = super().name_lookup(str(self.active_id()))
        assert found is not None
        kept = [r for r in found.records if r["customer_id"] != self.gone]
        return NameLookupData(kept, found.model, found.threshold)


def details(served: Served) -> dict[str, Any]:
    billing = pd.read_parquet(served.folder / "data" / "demo" / "customers_billing.parquet").iloc[0]
    return {k: str(billing[k]) for k in ("first_name", "last_name", "postcode", "city")}


def poll(ask: Any, seconds: float = 60) -> Match | None:
    deadline = time.monotonic() + seconds
    while (found := ask()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_the_previous_index_answers_while_the_next_snapshots_is_built(served: Served) -> None:
    url = served.settings.serving_store_url
    guest = details(served)
    names = NameIndex()
    plain = ServingStore(url)
    active = str(plain.active_id())
    assert names.best_match(plain, active, guest) is None  # right after start: not built yet
    first = poll(lambda: names.best_match(plain, active, guest))
    assert first is not None

    store = HeldStore(url, gone=first.customer_id)
    while_building = names.best_match(store, NEXT, guest)  # starts the next build, held back
    assert while_building is not None  # the previous snapshot's index answered
    assert while_building.customer_id == first.customer_id

    store.release.set()  # the next index is built: the guest is not in it
    deadline = time.monotonic() + 60
    while names.best_match(store, NEXT, guest) is not None:
        assert time.monotonic() < deadline, "the next snapshot's index was never used"
        time.sleep(0.05)
    for opened in (plain, store):
        opened.engine.dispose()
