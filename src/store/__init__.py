"""The serving store: what ``crm score`` writes and the API reads (SQLAlchemy: SQLite by default,
PostgreSQL by URL). Shared storage like the warehouse: the jobs write it, the API reads it. Its schema is
Alembic's (``store.migrations``): ``ServingStore(url).upgrade()`` migrates, opening a store never does."""

from crm_analytics.store.decision_log import Decision, DecisionWriter
from crm_analytics.store.records import BookingGuest, CustomerRecord, NameLookupData, Snapshot, now
from crm_analytics.store.refresh_log import RefreshLog, RefreshRun
from crm_analytics.store.serving_store import ServingStore, engine_for

__all__ = [
    "BookingGuest",
    "CustomerRecord",
    "Decision",
    "DecisionWriter",
    "NameLookupData",
    "RefreshLog",
    "RefreshRun",
    "ServingStore",
    "Snapshot",
    "engine_for",
    "now",
]
