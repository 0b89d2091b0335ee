"""The serving store: what ``crm score`` writes and the API reads (SQLAlchemy: SQLite by default,
PostgreSQL by URL). Shared storage like the warehouse: the jobs write it, the API reads it."""

from crm_analytics.store.serving_store import (
    BookingGuest,
    CustomerRecord,
    NameLookupData,
    ServingStore,
    Snapshot,
    engine_for,
    now,
)

__all__ = [
    "BookingGuest",
    "CustomerRecord",
    "NameLookupData",
    "ServingStore",
    "Snapshot",
    "engine_for",
    "now",
]
