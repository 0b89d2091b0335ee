"""The offer ranker for the active snapshot's catalogue and the loaded champions, built once per pair.

Building an :class:`~crm_analytics.models.offers.ranker.OfferRanker` decodes the snapshot's catalogue
and encodes it for both acceptance models (a few milliseconds); a booking then only ranks. The cache is
keyed by snapshot id and the champions' versions, so a new ``crm score`` run or a promoted model is
picked up by the next booking.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import pandas as pd

from crm_analytics.models.offers.ranker import OfferRanker
from crm_analytics.serving.models import ServedModels
from crm_analytics.store import ServingStore, Snapshot


class ServedRanker(NamedTuple):
    """A ranker and the snapshot whose catalogue it ranks (its day and model versions)."""

    ranker: OfferRanker
    snapshot: Snapshot


class RankerCache:
    """The current ranker; rebuilt when the active snapshot or the served models change."""

    def __init__(self) -> None:
        self._key: tuple[str, str] | None = None
        self._ranker: ServedRanker | None = None
        self._lock = threading.Lock()

    def get(
        self, store: ServingStore, models: ServedModels, snapshot_id: str | None = None
    ) -> ServedRanker | None:
        """The ranker for the active snapshot (``snapshot_id`` when the caller just read it) and
        ``models``; None before the first ``crm score``."""
        snapshot_id = snapshot_id or store.active_id()
        if snapshot_id is None:
            return None
        key = (snapshot_id, models.header())
        with self._lock:
            if self._key == key and self._ranker is not None:
                return self._ranker
        snapshot = store.active()
        if snapshot is None:
            return None
        catalogue = pd.DataFrame(snapshot.catalogue)
        hotels = (
            pd.DataFrame(snapshot.hotels, columns=["hotel_id", "facilities"]) if snapshot.hotels else None
        )
        ranker = ServedRanker(
            OfferRanker(models.offers_full, models.offers_context, catalogue, hotels), snapshot
        )
        with self._lock:
            self._key, self._ranker = (snapshot.snapshot_id, models.header()), ranker
        return ranker

    def clear(self) -> None:
        """Drop the ranker (and with it the models and catalogue it holds); the next booking builds one."""
        with self._lock:
            self._key, self._ranker = None, None
