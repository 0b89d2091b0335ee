"""Finding a guest by name at booking time: the profiles' linkage model over the snapshot's records.

``crm score`` copies the normalised source records and the linkage model into the serving store, so the
API does not need the warehouse. :class:`NameIndex` keeps one :class:`ProfileIndex` for the active
snapshot. Building it takes seconds for a large chain, so it is built in a background thread (at start
and whenever the snapshot changes). Meanwhile the previous snapshot's index keeps answering (customer
ids are stable across snapshots; a guest merged away or erased since is then not found in the store
and stays unknown); only before the first index is ready does a name find nobody rather than wait
(a new snapshot arrives every day: the desk would otherwise lose name look-ups after each refresh).
Look-ups take ~0.2 ms (``profiles/name_scorer.py``; ~3.5 ms for a model it must run in
DuckDB) and are serialised, as the index's DuckDB connection is not shared between threads. The caller
runs them in a thread. An erased guest is never returned (their store rows are gone), though their
normalised names stay in this memory until the next snapshot or restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd

from crm_analytics.profiles.lookup import Match, ProfileIndex
from crm_analytics.store import ServingStore

log = logging.getLogger("crm_analytics.serving")
BUILDER_THREAD = "name-index-build"


class NameIndex:
    """The name index of the active snapshot, rebuilt in the background when the snapshot changes."""

    def __init__(self, on_built: Callable[[], None] | None = None) -> None:
        self._on_built = on_built  # called once a new index answers (``serving/heap.py``)
        self._snapshot: str | None = None  # the snapshot being served, whose index is built or being built
        self._index: ProfileIndex | None = None  # that snapshot's index, or the previous one until it is
        self._state = threading.Lock()  # guards _snapshot and _index
        self._queries = threading.Lock()  # one look-up at a time on the index's connection

    def best_match(
        self, store: ServingStore, snapshot_id: str, details: dict[str, Any], country: str | None = None
    ) -> Match | None:
        """The one customer the details name with confidence at or above the profiles' threshold;
        None when nobody does, when several do, or before the first index is built (the previous
        snapshot's answers while a new one is built). A national phone number is read in ``country``
        (the hotel's)."""
        index = self._ready(store, snapshot_id)
        if index is None:
            return None
        with self._queries:
            try:
                matches = index.lookup(details, limit=2, country=country)
            except ValueError:  # the details normalise to too little (e.g. a name of symbols only)
                return None
        return matches[0] if len(matches) == 1 else None

    def prepare(self, store: ServingStore, snapshot_id: str | None) -> None:
        """Start building the index for ``snapshot_id`` in the background, unless that is under way."""
        if snapshot_id is not None:
            self._ready(store, snapshot_id)

    def _ready(self, store: ServingStore, snapshot_id: str) -> ProfileIndex | None:
        with self._state:
            if self._snapshot != snapshot_id:
                self._snapshot = snapshot_id  # the index in hand answers until this one is built
                threading.Thread(
                    target=self._build, args=(store, snapshot_id), name=BUILDER_THREAD, daemon=True
                ).start()
            return self._index

    def _build(self, store: ServingStore, snapshot_id: str) -> None:
        try:
            found = store.name_lookup(snapshot_id)
            index = ProfileIndex(pd.DataFrame(found.records), found.model, found.threshold) if found else None
        except Exception as exc:  # the index in hand keeps answering; the next snapshot tries again
            log.error("name index for the snapshot not built (%s)", type(exc).__name__)
            return
        with self._state:
            if self._snapshot != snapshot_id:
                return  # a newer snapshot's build is under way
            self._index = index
        if self._on_built is not None:
            self._on_built()
