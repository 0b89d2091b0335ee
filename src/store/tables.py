"""The serving store's tables (SQLAlchemy Core): snapshots of per-customer scores, segments, briefs and
profiles written by ``crm score``; the decision log, offer feedback and API keys written through the API
and ``crm keys``.

Personal data lives here only where a role needs it: ``profile`` (analysts' customer view) and
``serving_lookup_records`` (normalised names and contacts, for finding a guest by name); both are
deleted by erasure. The schema is created and upgraded by Alembic (``store.migrations``).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text

from crm_analytics.profiles.records import MATCH_COLUMNS

metadata = MetaData()

snapshots = Table(
    "serving_snapshots",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("as_of", String(10), nullable=False),
    Column("models", Text, nullable=False),  # JSON: model name -> version
    Column("customers", Integer, nullable=False),
    Column("catalogue", Text, nullable=False),  # JSON: the offers catalogue the run scored against
    Column("hotels", Text),  # JSON: the hotels catalogue (null for a snapshot made before it existed)
    Column("profiles_built_at", DateTime),  # the latest profile build its briefs, profiles, contacts reflect
    Column("active", Boolean, nullable=False, default=False),
)
customers = Table(
    "serving_customers",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("customer_id", String(128), primary_key=True),
    Column("scores", Text),  # JSON: churn, expected purchases, CLV and its interval, tiers
    Column("segments", Text),  # JSON: family -> segment
    Column("history", Text),  # JSON: the offer model's purchase-history columns
    Column("brief", Text),  # JSON: service facts with source and last-confirmed date
    Column("profile", Text),  # JSON: surviving personal fields with provenance (personal data)
    Column("consent", Boolean, nullable=False, default=False),
)
segment_members = Table(
    "serving_segment_members",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("segment", String(128), primary_key=True),
    Column("customer_id", String(128), primary_key=True),
    Column("family", String(64), nullable=False),
    Column("clv", Float),
    Column("churn_probability", Float),
    Column("consent", Boolean, nullable=False),
)
contacts = Table(
    "serving_contacts",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),  # email | phone (normalised as profiles do)
    Column("value", String(256), primary_key=True),
    Column("customer_id", String(128), primary_key=True),
)
Index("serving_contacts_lookup", contacts.c.kind, contacts.c.value)
feedback = Table(
    "serving_feedback",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("event", String(16), nullable=False),  # shown | accepted | declined
    Column("offer_id", String(128), nullable=False),
    Column("customer_id", String(128)),
    Column("occurred_at", DateTime, nullable=False),
    Column("context", Text),  # JSON: the booking context the offer was shown for
    Column("received_at", DateTime, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("decision_id", String(128)),  # the /v1/offers answer the offer came from
)
Index("serving_feedback_shown", feedback.c.customer_id, feedback.c.event, feedback.c.occurred_at)
decisions = Table(  # the decision log: every /v1/offers answer, committed before it is sent
    "serving_decisions",
    metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("customer_id", String(128)),  # our pseudonymous id of the recognised guest; null: unknown
    Column("decided_at", DateTime, nullable=False),
    Column("offers", Text, nullable=False),  # JSON: [{"offer_id", "propensity"}] in the order shown
    Column("models", Text, nullable=False),  # JSON: model name -> version behind the answer
    Column("key_id", String(64), nullable=False),  # the API key that asked
    Column("hotel_id", String(128)),  # the booking's hotel (null: logged before 0006)
    Column("matched_by", String(16)),  # customer_id | email | phone | name (null: unknown guest, or pre-0006)
)
Index("serving_decisions_customer", decisions.c.customer_id)
lookup_records = Table(  # normalised source records, for finding a guest by name (personal data)
    "serving_lookup_records",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("unique_id", String(300), primary_key=True),
    Column("customer_id", String(128), nullable=False),
    *(Column(name, String(256)) for name in MATCH_COLUMNS),
)
linkage_models = Table(  # the linkage model (m/u probabilities, no personal data) that scores a name
    "serving_linkage_models",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("settings", Text, nullable=False),  # JSON
    Column("threshold", Float, nullable=False),
)
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("roles", Text, nullable=False),  # comma-separated role names
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("hotels", Text, nullable=True),  # comma-separated hotel ids the key may book for; NULL: all
)

SNAPSHOT_TABLES = (customers, segment_members, contacts, lookup_records, linkage_models)
PER_CUSTOMER_TABLES = (customers, segment_members, contacts, lookup_records, feedback, decisions)
refresh_runs = Table(  # one row per daily refresh (``crm refresh``): what ran, for which day, how it ended
    "refresh_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("as_of", String(10), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(16), nullable=False),  # running | succeeded | unchanged | failed
    Column("fingerprint", Text, nullable=False),  # JSON: the day, the data's batches, the champions
    Column("report", Text),  # JSON: the stages' reports (counts and versions, no personal data)
    Column("error", Text),  # one line: the typed error's message
)
Index("refresh_runs_started", refresh_runs.c.started_at)
monitoring_gauges = Table(  # the latest monitored day's figures for /metrics (``store.monitoring_status``)
    "monitoring_gauges",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("labels", String(255), primary_key=True),  # JSON, keys sorted
    Column("value", Float, nullable=False),
    Column("as_of", String(10), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)
