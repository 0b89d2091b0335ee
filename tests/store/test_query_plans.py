"""The serving store's per-request reads go by index, whatever the store's size: SQLite's plan for each
(EXPLAIN QUERY PLAN of the statements the store really runs, through SQLAlchemy or, for a booking's
guest, on its plain connection) never scans a per-customer table. A scan
made each read of one guest cost ~0.6 ms at 2,000 guests and grows with the chain."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crm_analytics.store import ServingStore
from crm_analytics.store.tables import contacts, customers, segment_members, snapshots

PER_CUSTOMER_TABLES = (
    "serving_customers",
    "serving_segment_members",
    "serving_contacts",
    "serving_feedback",
    "serving_decisions",
)
READS: dict[str, Callable[[ServingStore], Any]] = {
    "customer": lambda store: store.customer("U1"),
    "booking_guest": lambda store: store.booking_guest("U1", datetime(2026, 1, 1)),
    "customers_by_id": lambda store: store.customers_by_id(["U1", "U2"]),
    "find_contact": lambda store: store.find_contact("email", "a@example.com"),
    "segment_page": lambda store: store.segment_page("Champions", after="U1", limit=100, min_clv=1.0),
    "has_segment": lambda store: store.has_segment("Champions"),
    "decisions": lambda store: store.decisions(["d1"]),
}


@pytest.fixture(params=["no statistics", "analysed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServingStore]:
    """A store as the jobs leave it (no ``ANALYZE`` statistics: SQLite's planner then guesses), and
    one with two snapshots of 2,000 guests (one active), analysed."""
    serving = ServingStore(f"sqlite:///{tmp_path / 'serving.db'}").upgrade()
    if request.param == "no statistics":
        yield serving
        serving.engine.dispose()
        return
    with serving.engine.begin() as conn:
        for number, active in ((1, False), (2, True)):
            snapshot = f"s{number}"
            conn.execute(
                snapshots.insert(),
                {
                    "snapshot_id": snapshot,
                    "created_at": datetime(2026, 1, number),
                    "as_of": f"2025-12-0{number}",
                    "models": "{}",
                    "customers": 2000,
                    "catalogue": "[]",
                    "active": active,
                },
            )
            ids = [f"U{i}" for i in range(2000)]
            conn.execute(
                customers.insert(),
                [{"snapshot_id": snapshot, "customer_id": c, "scores": "{}", "consent": True} for c in ids],
            )
            conn.execute(
                segment_members.insert(),
                [
                    {"snapshot_id": snapshot, "segment": f"S{i % 7}", "customer_id": c, "family": "rfm"}
                    | {"clv": float(i), "churn_probability": 0.5, "consent": True}
                    for i, c in enumerate(ids)
                ],
            )
            conn.execute(
                contacts.insert(),
                [
                    {"snapshot_id": snapshot, "kind": "email", "value": f"{c}@x.example", "customer_id": c}
                    for c in ids
                ],
            )
        conn.exec_driver_sql("ANALYZE")
    yield serving
    serving.engine.dispose()


def plans_of(store: ServingStore, read: Callable[[ServingStore], Any]) -> list[str]:
    """The query plan lines of every statement ``read`` runs."""
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    plain = store._guest_reader.connection() if store._guest_reader else None  # SQLite's guest read
    if plain is not None:  # its statements with their values written in (sqlite3's trace)
        plain.set_trace_callback(lambda statement: statements.append((statement, ())))
    try:
        read(store)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
        if plain is not None:
            plain.set_trace_callback(None)
    assert statements, "the read ran no statement"
    lines = []
    with store.engine.connect() as conn:
        for statement, parameters in statements:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            lines += [str(row[-1]) for row in plan]
    return lines


@pytest.mark.parametrize("name", sorted(READS))
def test_per_request_reads_use_an_index(store: ServingStore, name: str) -> None:
    plan = plans_of(store, READS[name])
    scans = [line for line in plan if line.startswith("SCAN") and any(t in line for t in PER_CUSTOMER_TABLES)]
    covering = [line for line in scans if "COVERING INDEX" in line]
    assert not scans, f"{name} scans a per-customer table: {scans} ({len(covering)} via a whole index)"
