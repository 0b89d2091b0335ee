"""The serving store: per-customer scores, segments, guest briefs and profiles, written by ``crm score``
and read by the API, through SQLAlchemy Core on SQLite (default, WAL) or PostgreSQL alike, but for a
booking's guest row, read on SQLite on a plain connection (``store/sqlite_guest_read.py`` says why).

Personal data lives here only where a role needs it: ``profile`` (analysts' customer view) and
``serving_lookup_records`` (normalised names and contacts, for finding a guest by name); both are
deleted by ``erase``, as are the person's feedback and decision-log rows (``store.decision_log``).

Snapshots make a scoring run atomic: every row carries its run's ``snapshot_id``; a run stages its rows
chunk by chunk under a snapshot that is not yet active, then switches the ``active`` flag in one short
transaction, and the replaced snapshot's rows are deleted afterwards. A reader therefore sees the old run
or the new one, never half of one, and the API's own writes never wait for a whole run. Scoring runs
do not overlap: each holds the warehouse's writer lock.
The schema is Alembic's (``store.migrations``): opening a store runs no DDL, ``upgrade`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    Integer,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from crm_analytics.store import migrations
from crm_analytics.store.bulk_insert import insert_rows
from crm_analytics.store.decision_log import Decision
from crm_analytics.store.records import (
    BOOKING_GUEST,
    BookingGuest,
    CustomerRecord,
    NameLookupData,
    Snapshot,
    active_customers,
    active_id,
    chunks,
    customer_record,
    with_active_snapshot,
)
from crm_analytics.store.snapshot_rows import (
    STAGE_ROWS,
    Carry,
    copy_carried,
    delete_snapshot_rows,
    staging_connection,
)
from crm_analytics.store.sqlite_decision_log import suits
from crm_analytics.store.sqlite_guest_read import SqliteGuestReader
from crm_analytics.store.tables import (
    PER_CUSTOMER_TABLES,
    SNAPSHOT_TABLES,
    contacts,
    customers,
    decisions,
    feedback,
    linkage_models,
    lookup_records,
    segment_members,
    snapshots,
)
from crm_analytics.warehouse.private_files import create_private


def engine_for(url: str, statement_timeout_ms: int | None = None, lock_wait_ms: int = 5_000) -> Engine:
    """An engine for the store URL; SQLite gets WAL, a busy timeout (``lock_wait_ms``) and durable
    commits; PostgreSQL a connect timeout and, when given, a statement timeout (the API's, so a slow
    database cannot hold a worker)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args["connect_timeout"] = 5
        if statement_timeout_ms:
            connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        if engine.url.database and engine.url.database != ":memory:":
            create_private(Path(engine.url.database))  # SQLite gives its -wal and -shm files this mode

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(lock_wait_ms)}")
            cursor.execute("PRAGMA synchronous=FULL")  # on disk before the API answers (decisions: see
            # store/sqlite_decision_log.py, which commits on a connection of its own)
            cursor.close()

    return engine


class ServingStore:
    """Reads and atomic snapshot writes over one SQLAlchemy engine. Opening it runs no DDL: ``upgrade``
    brings the schema to Alembic's head; the API only checks it (``schema_problem``)."""

    def __init__(
        self,
        url_or_engine: str | Engine,
        statement_timeout_ms: int | None = None,
        lock_wait_ms: int = 5_000,
    ) -> None:
        if isinstance(url_or_engine, str):
            self.engine = engine_for(url_or_engine, statement_timeout_ms, lock_wait_ms)
        else:
            self.engine = url_or_engine
        self._at_head = False
        self._guest_reader = SqliteGuestReader(self.engine, lock_wait_ms) if suits(self.engine) else None

    def upgrade(self) -> ServingStore:
        """Migrate the schema to head (``store.migrations``; safe when processes race); returns self."""
        migrations.upgrade(self.engine)
        self._at_head = True
        return self

    def schema_problem(self) -> str | None:
        """None once the schema is at head (remembered: a newer schema written later by a newer release
        must not unready a running API), else why the store cannot be served yet."""
        if not self._at_head:
            problem = migrations.problem(self.engine)
            self._at_head = problem is None
            return problem
        return None

    def write_snapshot(
        self,
        snapshot: Snapshot,
        rows: Iterable[Mapping[str, Any]],
        members: Iterable[Mapping[str, Any]],
        contact_rows: Iterable[Mapping[str, Any]],
        *,
        lookup_rows: Iterable[Mapping[str, Any]] = (),
        linkage: Mapping[str, Any] | None = None,
        carry: Carry | None = None,
    ) -> None:
        """Stage a run's rows under its snapshot id, then make it the active snapshot in one short
        transaction. ``lookup_rows`` and ``linkage`` (``settings`` JSON, ``threshold``) let the API find a
        guest by name. ``carry``: customers whose contacts and look-up records are copied from the
        active snapshot (``store.snapshot_rows``); ``contact_rows`` and ``lookup_rows`` leave them out.

        Staging commits chunk by chunk, so the store's write lock is held for one chunk at a time and the
        API's own writes (feedback) wait milliseconds, never the whole run; readers see only the active
        snapshot, so staged rows are invisible until the switch. Rows of any snapshot that is not active
        (a killed run's, the replaced one's) are deleted before staging and after the switch.
        """
        sid = snapshot.snapshot_id
        self.discard_inactive()
        with self.engine.begin() as conn:
            conn.execute(
                insert(snapshots).values(
                    snapshot_id=sid,
                    created_at=snapshot.created_at,
                    as_of=snapshot.as_of,
                    models=json.dumps(snapshot.models),
                    customers=snapshot.customers,
                    catalogue=json.dumps(snapshot.catalogue, default=str),
                    hotels=json.dumps(snapshot.hotels, default=str),
                    profiles_built_at=snapshot.profiles_built_at,
                    active=False,
                )
            )
        batches = ((customers, rows), (segment_members, members), (contacts, contact_rows))
        with staging_connection(self.engine) as conn:
            for table, batch in (*batches, (lookup_records, lookup_rows)):
                for chunk in chunks(({"snapshot_id": sid, **row} for row in batch), STAGE_ROWS):
                    with conn.begin():
                        insert_rows(conn, table, chunk)
            if carry is not None:
                copy_carried(conn, carry, sid)
        with self.engine.begin() as conn:  # durable (synchronous=FULL), and so is every staged row
            if linkage is not None:
                conn.execute(insert(linkage_models).values(snapshot_id=sid, **linkage))
            conn.execute(update(snapshots).values(active=snapshots.c.snapshot_id == sid))
        self.discard_inactive()

    def discard_inactive(self) -> int:
        """Delete the rows of every snapshot that is not active: the one a switch replaced, or one a
        killed run staged and never switched to. Chunked on SQLite (one short write lock each); returns
        the rows deleted."""
        with self.engine.connect() as conn:
            stale = list(conn.execute(select(snapshots.c.snapshot_id).where(~snapshots.c.active)).scalars())
        deleted = 0
        with staging_connection(self.engine) as conn:  # a lost delete is done again by the next discard
            for sid in stale:
                for table in SNAPSHOT_TABLES:
                    deleted += delete_snapshot_rows(conn, table, sid)
                with conn.begin():
                    conn.execute(delete(snapshots).where(snapshots.c.snapshot_id == sid))
        return deleted

    def active(self) -> Snapshot | None:
        """The snapshot the API serves, or None before the first ``crm score``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(snapshots).where(snapshots.c.active)).mappings().first()
        if row is None:
            return None
        return Snapshot(
            row["snapshot_id"],
            row["created_at"],
            row["as_of"],
            json.loads(row["models"]),
            row["customers"],
            json.loads(row["catalogue"]),
            json.loads(row["hotels"] or "[]"),
            row["profiles_built_at"],
        )

    def active_id(self) -> str | None:
        """The active snapshot's id (a cheap check before using anything cached for it)."""
        with self.engine.connect() as conn:
            return conn.execute(select(snapshots.c.snapshot_id).where(snapshots.c.active)).scalar()

    def customer(self, customer_id: str) -> CustomerRecord | None:
        """A customer of the active snapshot."""
        query = active_customers().where(customers.c.customer_id == customer_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return customer_record(row) if row is not None else None

    def booking_guest(self, customer_id: str, shown_since: datetime) -> BookingGuest | None:
        """The guest's row for a booking and the offers shown to them since ``shown_since`` (the contact
        cap), in one statement compiled once."""
        row: Mapping[Any, Any] | None
        if self._guest_reader is not None:
            row = self._guest_reader.row(customer_id, shown_since)
        else:
            with self.engine.connect() as conn:
                parameters = {"customer_id": customer_id, "since": shown_since}
                row = conn.execute(BOOKING_GUEST, parameters).mappings().first()
        if row is None:
            return None
        shown = row["shown_since"]
        return BookingGuest(
            customer_id=row["customer_id"],
            snapshot_id=row["snapshot_id"],
            segments=json.loads(row["segments"]) if row["segments"] else {},
            history=json.loads(row["history"]) if row["history"] else None,
            brief=json.loads(row["brief"]) if row["brief"] else [],
            offers_shown_recently=int(shown or 0),
            as_of=row["as_of"],
            models=json.loads(row["models"]),
        )

    def customers_by_id(self, customer_ids: list[str]) -> dict[str, CustomerRecord]:
        """Customers of the active snapshot by id (unknown ids are absent)."""
        query = active_customers().where(customers.c.customer_id.in_(customer_ids))
        with self.engine.connect() as conn:
            return {r["customer_id"]: customer_record(r) for r in conn.execute(query).mappings()}

    def find_contact(self, kind: str, value: str) -> list[str]:
        """Customer ids holding a normalised e-mail or phone in the active snapshot."""
        query = select(contacts.c.customer_id).where(
            and_(contacts.c.snapshot_id == active_id(), contacts.c.kind == kind, contacts.c.value == value)
        )
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def segments(self) -> list[dict[str, Any]]:
        """Every segment: family, size, consenting members, mean CLV and churn, the snapshot's day."""
        m = segment_members.c
        joined, active = with_active_snapshot(segment_members)
        query = (
            select(
                m.family,
                m.segment,
                func.count().label("customers"),
                func.sum(func.cast(m.consent, Integer)).label("with_consent"),
                func.avg(m.clv).label("mean_clv"),
                func.avg(m.churn_probability).label("mean_churn_probability"),
                snapshots.c.as_of,
            )
            .select_from(joined)
            .where(active)
            .group_by(m.family, m.segment, snapshots.c.as_of)
            .order_by(m.family, m.segment)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def segment_page(
        self,
        segment: str,
        *,
        after: str | None,
        limit: int,
        min_clv: float | None = None,
        max_churn: float | None = None,
    ) -> list[dict[str, Any]]:
        """Consenting members of ``segment`` after the cursor ``after`` (a customer id), in id order."""
        m = segment_members.c
        joined, active = with_active_snapshot(segment_members)
        conditions = [active, m.segment == segment, m.consent]
        if after is not None:
            conditions.append(m.customer_id > after)
        if min_clv is not None:
            conditions.append(m.clv >= min_clv)
        if max_churn is not None:
            conditions.append(m.churn_probability <= max_churn)
        query = (
            select(m.customer_id, m.family, m.segment, m.clv, m.churn_probability, snapshots.c.as_of)
            .select_from(joined)
            .where(and_(*conditions))
            .order_by(m.customer_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def has_segment(self, segment: str) -> bool:
        m = segment_members.c
        query = select(func.count()).where(and_(m.snapshot_id == active_id(), m.segment == segment))
        with self.engine.connect() as conn:
            return bool(conn.execute(query).scalar())

    def record_feedback(self, row: Mapping[str, Any]) -> bool:
        """Store a feedback event durably; False when its ``event_id`` was already stored with the same
        content (an idempotent retry); a ValueError when the id was used for a different event."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(feedback).values(**row))
            return True
        except IntegrityError:  # the id is taken (also when a concurrent retry won the race)
            pass
        with self.engine.connect() as conn:
            query = select(feedback).where(feedback.c.event_id == row["event_id"])
            existing = conn.execute(query).mappings().one()
        same = all(
            existing[k] == row[k] for k in ("event", "offer_id", "customer_id", "occurred_at", "decision_id")
        )
        if not same:
            raise ValueError("event_id: already used for a different event")
        return False

    def name_lookup(self, snapshot_id: str) -> NameLookupData | None:
        """A snapshot's lookup records, linkage model and threshold; None when it has no model."""
        with self.engine.connect() as conn:
            model = (
                conn.execute(select(linkage_models).where(linkage_models.c.snapshot_id == snapshot_id))
                .mappings()
                .first()
            )
            if model is None:
                return None
            query = select(lookup_records).where(lookup_records.c.snapshot_id == snapshot_id)
            records = [dict(r) for r in conn.execute(query).mappings()]
        return NameLookupData(records, json.loads(model["settings"]), float(model["threshold"]))

    def record_decisions(self, logged: Sequence[Decision]) -> None:
        """Commit ``/v1/offers`` answers to the decision log, all in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(insert(decisions), [decision.row() for decision in logged])

    def decisions(self, decision_ids: Iterable[str]) -> dict[str, Decision]:
        """The logged decisions with these ids (unknown ids are absent)."""
        query = select(decisions).where(decisions.c.decision_id.in_(set(decision_ids)))
        with self.engine.connect() as conn:
            return {r["decision_id"]: Decision.from_row(r) for r in conn.execute(query).mappings()}

    def feedback_events(self) -> list[dict[str, Any]]:
        """Every stored feedback event (booking context decoded) with the logged ``decision`` it names
        (None when it was never logged), oldest first."""
        joined = feedback.outerjoin(decisions, decisions.c.decision_id == feedback.c.decision_id)
        logged = [c.label(f"decision_{c.name}") for c in decisions.c]
        query = (
            select(feedback, *logged)
            .select_from(joined)
            .order_by(feedback.c.occurred_at, feedback.c.event_id)
        )
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        events = []
        for row in rows:
            decision = {c.name: row.pop(f"decision_{c.name}") for c in decisions.c}
            row["context"] = json.loads(row["context"]) if row["context"] else None
            row["decision"] = Decision.from_row(decision) if decision["decision_id"] else None
            events.append(row)
        return events

    def erase(self, customer_ids: Iterable[str]) -> int:
        """Delete every row about these customers (erasure); returns the rows deleted."""
        ids = list(customer_ids)
        deleted = 0
        with self.engine.begin() as conn:
            for table in PER_CUSTOMER_TABLES:
                deleted += conn.execute(delete(table).where(table.c.customer_id.in_(ids))).rowcount or 0
        return deleted
