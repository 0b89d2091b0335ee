"""A booking's guest read on a plain sqlite3 connection (``store/sqlite_guest_read.py``) answers exactly
what the same statement through SQLAlchemy answers: the active snapshot only, the stored JSON decoded
alike, and the contact cap's count of offers shown since a moment (the boundary to the microsecond)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from crm_analytics.store import ServingStore
from crm_analytics.store.tables import customers, feedback, snapshots

SINCE = datetime(2026, 3, 1, 12, 0, 0, 250_000)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ServingStore]:
    """Two snapshots (s2 active); U0-U4 shown offers just before, at and after ``SINCE``."""
    serving = ServingStore(f"sqlite:///{tmp_path / 'serving.db'}").upgrade()
    with serving.engine.begin() as conn:
        for number, active in ((1, False), (2, True)):
            conn.execute(
                snapshots.insert(),
                {
                    "snapshot_id": f"s{number}",
                    "created_at": datetime(2026, 1, number),
                    "as_of": f"2025-12-0{number}",
                    "models": json.dumps({"crm-churn": str(number)}),
                    "customers": 5,
                    "catalogue": "[]",
                    "active": active,
                },
            )
            conn.execute(
                customers.insert(),
                [
                    {
                        "snapshot_id": f"s{number}",
                        "customer_id": f"U{i}",
                        "scores": "{}",
                        "segments": json.dumps({"value_tier": f"tier{i}"}) if i % 2 else None,
                        "history": json.dumps({"frequency": i, "monetary": None}) if i != 3 else None,
                        "brief": json.dumps([{"fact": "allergy", "value": "dust"}]) if i == 1 else None,
                        "consent": True,
                    }
                    for i in range(5 if active else 6)  # U5 is only in the inactive snapshot
                ],
            )
        offsets = (-1, 0, 1, 3_600_000_000)  # microseconds from SINCE: before, at, just after, an hour on
        conn.execute(
            feedback.insert(),
            [
                {
                    "event_id": f"e{i}-{k}-{event}",
                    "event": event,
                    "offer_id": "O01",
                    "customer_id": f"U{i}",
                    "occurred_at": SINCE + timedelta(microseconds=offset),
                    "received_at": SINCE,
                    "key_id": "k1",
                }
                for i in range(5)
                for k, offset in enumerate(offsets[: i + 1])
                for event in ("shown", "accepted")
            ],
        )
    yield serving
    serving.engine.dispose()


def test_the_plain_read_answers_what_sqlalchemy_answers(store: ServingStore) -> None:
    through_sqlalchemy = ServingStore(store.engine)
    through_sqlalchemy._guest_reader = None  # the PostgreSQL path, on the same file
    assert store._guest_reader is not None
    for since in (SINCE, SINCE - timedelta(days=1), SINCE + timedelta(days=1)):
        for customer_id in ("U0", "U1", "U2", "U3", "U4", "U5", "nobody"):
            plain = store.booking_guest(customer_id, since)
            assert plain == through_sqlalchemy.booking_guest(customer_id, since), (customer_id, since)
    guest = store.booking_guest("U1", SINCE)
    assert guest is not None
    assert (guest.snapshot_id, guest.as_of, guest.models) == ("s2", "2025-12-02", {"crm-churn": "2"})
    assert guest.brief == [{"fact": "allergy", "value": "dust"}]
    assert guest.segments == {"value_tier": "tier1"}
    assert guest.offers_shown_recently == 1  # shown at SINCE counts; 1 us before it does not
    assert store.booking_guest("U4", SINCE).offers_shown_recently == 3
    assert store.booking_guest("U5", SINCE) is None  # a guest of the inactive snapshot only


def test_the_plain_read_sees_a_snapshot_switch_at_once(store: ServingStore) -> None:
    assert store.booking_guest("U5", SINCE) is None
    with store.engine.begin() as conn:
        conn.execute(snapshots.update().values(active=snapshots.c.snapshot_id == "s1"))
    guest = store.booking_guest("U5", SINCE)
    assert guest is not None
    assert guest.snapshot_id == "s1"
