"""What the serving store's reads return, and the statements the hot paths share.

Every customer row comes back with the ``as_of`` and the model versions of the snapshot it belongs to,
read in the same statement (a join on the snapshot), so an answer never pairs one snapshot's scores
with another's versions, even while a new snapshot is switched in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Join, RowMapping, Table, and_, bindparam, func, select

from crm_analytics.store.tables import customers, feedback, snapshots


@dataclass(frozen=True)
class Snapshot:
    """One scoring run's metadata."""

    snapshot_id: str
    created_at: datetime
    as_of: str
    models: dict[str, str]
    customers: int
    catalogue: list[dict[str, Any]]
    hotels: list[dict[str, Any]] = field(default_factory=list)  # the hotels catalogue (contract columns)
    profiles_built_at: datetime | None = None  # the latest profile build its personal rows reflect


class NameLookupData(NamedTuple):
    """What a snapshot stores for finding a guest by name (personal data: normalised records)."""

    records: list[dict[str, Any]]
    model: dict[str, Any]  # the linkage model's settings (m/u probabilities only)
    threshold: float


@dataclass(frozen=True)
class BookingGuest:
    """What a booking needs about a guest of the active snapshot (no profile: no personal fields)."""

    customer_id: str
    snapshot_id: str
    segments: dict[str, str]
    history: dict[str, Any] | None
    brief: list[dict[str, Any]]
    offers_shown_recently: int
    as_of: str = ""  # the snapshot's day
    models: dict[str, str] | None = None  # the versions that made the snapshot


@dataclass(frozen=True)
class CustomerRecord:
    """A customer's row in the active snapshot (JSON fields decoded), with the snapshot's day and the
    model versions that produced its scores."""

    customer_id: str
    scores: dict[str, Any] | None
    segments: dict[str, str]
    history: dict[str, Any] | None
    brief: list[dict[str, Any]]
    profile: dict[str, Any] | None
    consent: bool
    as_of: str = ""
    models: dict[str, str] | None = None


def active_id() -> Any:
    """The active snapshot's id, as a scalar subquery."""
    return select(snapshots.c.snapshot_id).where(snapshots.c.active).scalar_subquery()


def with_active_snapshot(table: Table) -> tuple[Join, ColumnElement[bool]]:
    """``table`` joined to its snapshot (for ``as_of`` and ``models``), and the condition keeping the
    active snapshot's rows. The condition gives the snapshot id as a value (``active_id()``), so the
    database reads ``table`` by its primary key (snapshot id first); with a join on the active flag
    alone SQLite scanned every row per request (tests/store/test_query_plans.py)."""
    joined = table.join(snapshots, snapshots.c.snapshot_id == table.c.snapshot_id)
    return joined, table.c.snapshot_id == active_id()


def active_customers() -> Any:
    """Customer rows of the active snapshot with its ``as_of`` and ``models`` (add the filters)."""
    joined, active = with_active_snapshot(customers)
    return select(customers, snapshots.c.as_of, snapshots.c.models).select_from(joined).where(active)


SHOWN_SINCE = select(func.count()).where(
    and_(
        feedback.c.customer_id == bindparam("customer_id"),
        feedback.c.event == "shown",
        feedback.c.occurred_at >= bindparam("since"),
    )
)
_GUESTS, _ACTIVE_GUESTS = with_active_snapshot(customers)
BOOKING_GUEST = (  # one statement per booking: the guest's row and the offers shown since (contact cap)
    select(
        customers.c.customer_id,
        customers.c.snapshot_id,
        customers.c.segments,
        customers.c.history,
        customers.c.brief,
        snapshots.c.as_of,
        snapshots.c.models,
        SHOWN_SINCE.scalar_subquery().label("shown_since"),
    )
    .select_from(_GUESTS)
    .where(and_(_ACTIVE_GUESTS, customers.c.customer_id == bindparam("customer_id")))
)


def customer_record(row: RowMapping) -> CustomerRecord:
    """A customer row (from ``active_customers``) decoded."""

    def load(name: str) -> Any:
        value = row[name]
        return json.loads(value) if value is not None else None

    return CustomerRecord(
        customer_id=row["customer_id"],
        scores=load("scores"),
        segments=load("segments") or {},
        history=load("history"),
        brief=load("brief") or [],
        profile=load("profile"),
        consent=bool(row["consent"]),
        as_of=row["as_of"],
        models=load("models") or {},
    )


def chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """``rows`` in lists of at most ``size``."""
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def now() -> datetime:
    """The current UTC time, naive (as the store keeps it)."""
    return datetime.now(UTC).replace(tzinfo=None)
