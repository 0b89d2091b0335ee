"""The warehouse schema as one ordered, versioned list of migration steps.

A step is frozen once released: a later change is a new step appended to ``MIGRATIONS``, never an edit,
so a warehouse made by any release reaches the same schema. ``upgrade`` applies the steps a warehouse
has not recorded in ``schema_migrations`` yet, each in one transaction with its record; on PostgreSQL
a transaction-level advisory lock (also around creating ``schema_migrations``) makes concurrent
upgrades wait for each other (a DuckDB file has one writer process). Opening a warehouse runs no DDL:
the jobs and ingest call ``upgrade`` before they write. ``tests/warehouse/test_migrations.py`` checks
that the steps create every column the code writes.

Hand-written rather than Alembic, which manages the serving store: Alembic cannot reflect DuckDB
schemas through duckdb-engine, and the warehouse needs only ordered DDL steps, not autogeneration.
Tables whose columns come from the data (the feature columns of ``features``, the per-family score
columns of ``customer_scores``) gain those columns where they are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from crm_analytics.warehouse.connection import Execute, Warehouse, create_table_sql

VERSION_TABLE = "schema_migrations"
_ADVISORY_LOCK = 7_262_016  # any constant shared by every crm process


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


def _table(name: str, columns: str, key: str = "") -> str:
    """``CREATE TABLE IF NOT EXISTS`` from ``"name TYPE, ..."`` (names quoted: some are keywords)."""
    pairs = (c.strip().split(" ", 1) for c in columns.split(",") if c.strip())
    keys = tuple(k.strip() for k in key.split(",") if k.strip())
    return create_table_sql(name, {column: kind for column, kind in pairs}, keys)


# The schema release 0.1.0 created as it went (contracts, quarantine, batch log, suppression, profiles,
# features, segment membership, scores). IF NOT EXISTS: a warehouse made by 0.1.0 is adopted as it is.
_RELEASE_0_1_0 = (
    _table(
        "transactions",
        "transaction_id TEXT, customer_id TEXT, source TEXT, timestamp TIMESTAMP,"
        "amount DOUBLE PRECISION, currency TEXT, type TEXT, channel TEXT, reference_id TEXT,"
        "hotel_id TEXT, check_in TIMESTAMP, nights BIGINT, guests BIGINT, room_type TEXT, purpose TEXT,"
        "ingest_batch_id TEXT, row_hash BIGINT",
        key="source, transaction_id",
    ),
    _table(
        "transaction_items",
        "source TEXT, transaction_id TEXT, line_no BIGINT, item_id TEXT, category TEXT,"
        "quantity BIGINT, unit_price DOUBLE PRECISION, ingest_batch_id TEXT, row_hash BIGINT",
        key="source, transaction_id, line_no",
    ),
    _table(
        "customer_records",
        "source TEXT, source_customer_id TEXT, first_name TEXT, last_name TEXT, email TEXT, phone TEXT,"
        "street TEXT, city TEXT, postcode TEXT, country TEXT, birth_date TIMESTAMP,"
        "updated_at TIMESTAMP, marketing_consent BOOLEAN, loyalty_id TEXT, allergies TEXT,"
        "accessibility_needs TEXT, room_preferences TEXT, ingest_batch_id TEXT, row_hash BIGINT",
        key="source, source_customer_id, updated_at",
    ),
    _table(
        "offers",
        "offer_id TEXT, name TEXT, category TEXT, price DOUBLE PRECISION, margin DOUBLE PRECISION,"
        "unit TEXT, hotel_ids TEXT, requires_spa BOOLEAN, requires_parking BOOLEAN,"
        "requires_airport BOOLEAN, room_types TEXT, min_nights BIGINT, carpeted BOOLEAN,"
        "hypoallergenic BOOLEAN, valid_from TIMESTAMP, valid_until TIMESTAMP, ingest_batch_id TEXT,"
        "row_hash BIGINT",
        key="offer_id",
    ),
    _table(
        "offer_log",
        "event_id TEXT, shown_at TIMESTAMP, customer_id TEXT, source TEXT, transaction_id TEXT,"
        "offer_id TEXT, hotel_id TEXT, check_in TIMESTAMP, nights BIGINT, guests BIGINT,"
        "room_type TEXT, channel TEXT, purpose TEXT, upgrade_available BOOLEAN,"
        "propensity DOUBLE PRECISION, accepted BOOLEAN, responded_at TIMESTAMP, ingest_batch_id TEXT,"
        "row_hash BIGINT",
        key="event_id",
    ),
    _table(
        "quarantine",
        "batch_id TEXT, table_name TEXT, source_file TEXT, row_number BIGINT, column_name TEXT,"
        "reason TEXT, row_hash BIGINT, payload TEXT, quarantined_at TIMESTAMP",
        key="table_name, row_hash, column_name, reason",
    ),
    _table(
        "ingest_batches",
        "batch_id TEXT, table_name TEXT, source_file TEXT, file_sha256 TEXT, rows_read BIGINT,"
        "rows_new BIGINT, rows_duplicate BIGINT, rows_rejected BIGINT, started_at TIMESTAMP,"
        "finished_at TIMESTAMP",
        key="batch_id",
    ),
    _table(
        "erasure_suppressions",
        "subject_hash TEXT, kind TEXT, erased_at TIMESTAMP",
        key="subject_hash",
    ),
    _table(
        "customer_links",
        "source TEXT, source_customer_id TEXT, customer_id TEXT, match_probability DOUBLE PRECISION,"
        "matched_by TEXT, linked_at TIMESTAMP",
        key="source, source_customer_id",
    ),
    _table(
        "customer_profiles",
        "customer_id TEXT, first_name TEXT, last_name TEXT, name_source TEXT,"
        "name_updated_at TIMESTAMP, email TEXT, email_source TEXT, email_updated_at TIMESTAMP,"
        "phone TEXT, phone_source TEXT, phone_updated_at TIMESTAMP, street TEXT, city TEXT,"
        "postcode TEXT, country TEXT, address_source TEXT, address_updated_at TIMESTAMP,"
        "birth_date TIMESTAMP, birth_date_source TEXT, birth_date_updated_at TIMESTAMP,"
        "marketing_consent BOOLEAN, marketing_consent_source TEXT,"
        "marketing_consent_updated_at TIMESTAMP, loyalty_id TEXT, loyalty_id_source TEXT,"
        "loyalty_id_updated_at TIMESTAMP, sources TEXT, record_count BIGINT, built_at TIMESTAMP",
        key="customer_id",
    ),
    _table(
        "customer_service_facts",
        "customer_id TEXT, fact TEXT, value TEXT, source TEXT, last_confirmed TIMESTAMP",
        key="customer_id, fact, value, source",
    ),
    _table(
        "profile_conflicts",
        "customer_id TEXT, field TEXT, candidates TEXT, reason TEXT",
        key="customer_id, field",
    ),
    _table(
        "profile_records",
        "unique_id TEXT, source TEXT, source_customer_id TEXT, customer_id TEXT, first_name TEXT,"
        "last_name TEXT, email TEXT, phone TEXT, loyalty_id TEXT, birth_date TEXT, street TEXT,"
        "postcode TEXT, city TEXT",
        key="unique_id",
    ),
    _table(
        "profile_linkage_model",
        "built_at TIMESTAMP, threshold DOUBLE PRECISION, settings_json TEXT",
    ),
    _table(
        "features",
        "customer_id TEXT, as_of DATE",
        key="customer_id, as_of",
    ),
    _table(
        "feature_builds",
        "as_of DATE, config TEXT, columns TEXT, rows BIGINT, built_at TIMESTAMP",
        key="as_of",
    ),
    _table(
        "segment_membership",
        "customer_id TEXT, family TEXT, segment TEXT, definition_version TEXT, as_of DATE,"
        "scored_at TIMESTAMP, clv DOUBLE PRECISION, churn_probability DOUBLE PRECISION",
        key="customer_id, family",
    ),
    _table(
        "customer_scores",
        "customer_id TEXT, as_of DATE, p_alive DOUBLE PRECISION, expected_purchases DOUBLE PRECISION,"
        "expected_spend DOUBLE PRECISION, clv DOUBLE PRECISION, clv_low DOUBLE PRECISION,"
        "clv_high DOUBLE PRECISION, churn_probability DOUBLE PRECISION, models TEXT,"
        "scored_at TIMESTAMP",
        key="customer_id, as_of",
    ),
)

_STABLE_CUSTOMER_IDS = (
    'ALTER TABLE "profile_records" ADD COLUMN IF NOT EXISTS "versions" TEXT',
    _table(
        "customer_merges",
        "from_id TEXT, into_id TEXT, merged_at TIMESTAMP, reason TEXT",
        key="from_id, into_id",
    ),
)

_HOTELS = (
    _table(
        "hotels",
        "hotel_id TEXT, name TEXT, city TEXT, country TEXT, currency TEXT, room_types TEXT, facilities TEXT,"
        "ingest_batch_id TEXT, row_hash BIGINT",
        key="hotel_id",
    ),
)

_MONITORING = (
    _table(
        "monitoring_data_quality",
        "as_of DATE, table_name TEXT, source TEXT, check_name TEXT, value DOUBLE PRECISION, rows BIGINT,"
        "baseline DOUBLE PRECISION, breach BOOLEAN, detail TEXT, computed_at TIMESTAMP",
        key="as_of, table_name, source, check_name",
    ),
    _table("monitoring_batches", "batch_id TEXT, as_of DATE", key="batch_id"),
    # what was ingested before monitoring existed is no refresh day's: marked covered, by no day
    "INSERT INTO monitoring_batches SELECT batch_id, NULL FROM ingest_batches",
)

_DRIFT_AND_PERFORMANCE = (
    _table(
        "monitoring_drift",
        "as_of DATE, view TEXT, name TEXT, kind TEXT, reference TEXT, distance DOUBLE PRECISION,"
        "p_value DOUBLE PRECISION, psi DOUBLE PRECISION, rows BIGINT, reference_rows BIGINT, breach BOOLEAN,"
        "detail TEXT, shares TEXT, computed_at TIMESTAMP",
        key="as_of, view, name",
    ),
    _table(
        "monitoring_segment_counts",
        "as_of DATE, family TEXT, segment TEXT, customers BIGINT",
        key="as_of, family, segment",
    ),
    _table(
        "monitoring_performance",
        "scored_as_of DATE, model TEXT, version TEXT, metric TEXT, value DOUBLE PRECISION,"
        "baseline DOUBLE PRECISION, p_value DOUBLE PRECISION, rows BIGINT, horizon_days BIGINT,"
        "matured_on DATE, breach BOOLEAN, detail TEXT, computed_at TIMESTAMP",
        key="scored_as_of, model, metric",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "release 0.1.0 schema", _RELEASE_0_1_0),
    Migration(2, "profiles: record versions for incremental builds, customer merges", _STABLE_CUSTOMER_IDS),
    Migration(3, "hotels: country, room types and facilities of each hotel", _HOTELS),
    Migration(
        4, "monitoring: data quality per refresh day and check, the batches each day covered", _MONITORING
    ),
    Migration(
        5,
        "monitoring: drift per day and check, segment sizes per day, realized performance",
        _DRIFT_AND_PERFORMANCE,
    ),
)
HEAD = MIGRATIONS[-1].version


def current_version(warehouse: Warehouse) -> int:
    """The highest step applied to this warehouse (0 for an empty one)."""
    if not warehouse.has_table(VERSION_TABLE):
        return 0
    found = warehouse.fetch(f"SELECT MAX(version) AS version FROM {VERSION_TABLE}")["version"].iloc[0]
    return 0 if found is None or found != found else int(found)


def upgrade(warehouse: Warehouse, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply every step newer than the warehouse's version, in order; returns the versions applied."""
    applied: list[int] = []
    if current_version(warehouse) >= migrations[-1].version:
        return applied  # the common case: one cheap query
    with warehouse.transaction() as execute:
        _lock(warehouse, execute)  # concurrent CREATE TABLE IF NOT EXISTS can collide on PostgreSQL
        execute(
            create_table_sql(
                VERSION_TABLE,
                {"version": "BIGINT", "description": "TEXT", "applied_at": "TIMESTAMP"},
                ("version",),
            )
        )
    for step in migrations:
        with warehouse.transaction() as execute:
            _lock(warehouse, execute)
            # a row when another process applied the step while we waited: ``execute`` returns the
            # SELECT's row count on PostgreSQL (cursor.rowcount) and its one cell (1) on DuckDB
            if execute(f"SELECT 1 FROM {VERSION_TABLE} WHERE version = ?", [step.version]):
                continue
            for statement in step.statements:
                execute(statement)
            execute(
                f"INSERT INTO {VERSION_TABLE} VALUES (?, ?, ?)",
                [step.version, step.description, datetime.now(UTC).replace(tzinfo=None)],
            )
            applied.append(step.version)
    return applied


def _lock(warehouse: Warehouse, execute: Execute) -> None:
    """On PostgreSQL, wait for other upgrades; the lock is released when the transaction ends."""
    if warehouse.backend == "postgres":
        execute(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})")
