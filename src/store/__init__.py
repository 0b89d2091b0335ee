"""The serving store: what ``crm score`` writes and the API reads (SQLAlchemy: SQLite by default,
PostgreSQL by URL). Shared storage like the warehouse: the jobs write it, the API reads it. Its schema is
Alembic's (``store.migrations``): ``ServingStore(url).upgrade()`` migrates, opening a store never does."""

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
