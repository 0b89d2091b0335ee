"""Which customers' personal rows a scoring run carries from the active snapshot instead of building them
again: those whose profile no build has touched since that snapshot (``store.snapshot_rows``).

Profile builds stamp every customer they write with ``built_at``, later than any earlier build's
(``profiles.build``), and an incremental build (the daily refresh) writes only the customers new or
changed records touch. A snapshot remembers the latest
``built_at`` it reflects, so a customer whose ``built_at`` is not later, and who had a profile in that
snapshot, has the same brief, profile, contacts and look-up records as there. Everyone else's rows are
built from the warehouse. After a full ``crm profiles build`` nobody qualifies and everything is built;
so does a warehouse older than the snapshot (a restored backup). A release that changes how these rows
are rendered ships a store migration that clears ``profiles_built_at``, so its first snapshot builds
every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_analytics.jobs import score_rows
from crm_analytics.profiles.store import latest_build_time
from crm_analytics.profiles.tables import PROFILES
from crm_analytics.store import ServingStore
from crm_analytics.store.snapshot_rows import (
    Carry,
    carried_columns,
    customers_with_personal_rows,
    customers_with_profile,
)
from crm_analytics.warehouse import IdRange, Warehouse

MAX_DROPPED = 10_000  # more customers to rebuild than this: build everyone (no long NOT IN lists)


def plan_carry(warehouse: Warehouse, store: ServingStore) -> Carry | None:
    """The customers whose personal rows the next snapshot copies from the active one (None: build
    every row: no active snapshot, one written before it recorded its profile build, or too much
    changed)."""
    previous = store.active()
    if previous is None or previous.profiles_built_at is None:
        return None
    latest = latest_build_time(warehouse)
    if latest is None or latest < previous.profiles_built_at:  # a warehouse older than the snapshot
        return None
    stamp = previous.profiles_built_at.isoformat(sep=" ")
    untouched = warehouse.fetch(f"SELECT customer_id FROM {PROFILES} WHERE built_at <= TIMESTAMP '{stamp}'")
    if untouched.empty:  # after a full profile build: everyone is built again
        return None
    carried = frozenset(untouched["customer_id"].astype(str)) & customers_with_profile(
        store.engine, previous.snapshot_id
    )
    dropped = frozenset(customers_with_personal_rows(store.engine, previous.snapshot_id) - carried)
    if not carried or len(dropped) > MAX_DROPPED:
        return None
    return Carry(previous.snapshot_id, carried, dropped)


@dataclass(frozen=True)
class PersonalColumns:
    """A range's briefs and profiles (JSON text): built from the warehouse, or carried as stored."""

    briefs: dict[str, list[dict[str, Any]]]
    profiles: dict[str, str]
    stored: dict[str, tuple[Any, Any]]

    def customers(self) -> set[str]:
        """Everyone in the range with a profile."""
        return set(self.profiles) | set(self.stored)

    def of(self, customer_id: str) -> tuple[str | None, str | None]:
        """A customer's (brief, profile); a customer without facts has an empty brief."""
        if customer_id in self.stored:
            return self.stored[customer_id]
        return score_rows.as_json(self.briefs.get(customer_id, [])), self.profiles.get(customer_id)

    def with_brief(self) -> int:
        """How many customers have at least one service fact."""
        return len(self.briefs) + sum(brief not in (None, "[]") for brief, _ in self.stored.values())


def personal_columns(
    warehouse: Warehouse, store: ServingStore, carry: Carry | None, within: IdRange
) -> PersonalColumns:
    """The range's briefs and profiles: the carried customers' read from the active snapshot, the
    others' built from the profile tables."""
    kept = carry.customers if carry else frozenset()
    profile_rows = score_rows.in_range(warehouse, PROFILES, within)
    stored = (
        carried_columns(store.engine, carry.from_snapshot, kept & set(profile_rows["customer_id"]))
        if carry
        else {}
    )
    return PersonalColumns(
        score_rows.briefs_by_customer(warehouse, within, skip=kept),
        score_rows.profiles_by_customer(score_rows.without(profile_rows, kept)),
        stored,
    )
