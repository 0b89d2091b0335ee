"""Finding a guest by name at booking time: the profiles' linkage model over the snapshot's records.

``crm score`` copies the normalised source records and the linkage model into the serving store, so the
API does not need the warehouse. :class:`NameIndexes` builds one :class:`ProfileIndex` per snapshot on
the first name look-up (seconds for a large chain; later look-ups take ~50 ms) and serialises look-ups,
as the index's DuckDB connection is not shared between threads. The caller runs it in a thread.
"""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd

from crm_analytics.profiles.lookup import Match, ProfileIndex
from crm_analytics.serving.store import ServingStore


class NameIndexes:
    """The name index of the active snapshot, rebuilt when the snapshot changes."""

    def __init__(self) -> None:
        self._snapshot: str | None = None
        self._index: ProfileIndex | None = None
        self._lock = threading.Lock()

    def best_match(self, store: ServingStore, snapshot_id: str, details: dict[str, Any]) -> Match | None:
        """The one customer the details name with confidence at or above the profiles' threshold;
        None when nobody does, or when several do (a brief must never show another guest's facts).
        A ValueError names what is missing from ``details``."""
        with self._lock:
            index = self._index_for(store, snapshot_id)
            if index is None:
                return None
            matches = index.lookup(details, limit=2)
        return matches[0] if len(matches) == 1 else None

    def _index_for(self, store: ServingStore, snapshot_id: str) -> ProfileIndex | None:
        if self._snapshot != snapshot_id:
            parts = store.name_lookup(snapshot_id)
            self._index = ProfileIndex(pd.DataFrame(parts[0]), parts[1], parts[2]) if parts else None
            self._snapshot = snapshot_id
        return self._index
