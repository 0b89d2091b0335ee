"""Staging rows through the driver (``store.bulk_insert``) stores what SQLAlchemy's own insert stores."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, select

from crm_analytics.store import ServingStore
from crm_analytics.store.bulk_insert import insert_rows
from crm_analytics.store.tables import segment_members


def test_insert_rows_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    store = ServingStore(f"sqlite:///{tmp_path / 's.db'}").upgrade()
    rows = [  # keys in another order than the table's columns; booleans, None and floats
        {
            "consent": flag,
            "clv": clv,
            "churn_probability": None,
            "customer_id": f"c{i}",
            "family": "rfm",
            "segment": "Champions",
            "snapshot_id": snapshot,
        }
        for snapshot in ("by-driver", "by-sqlalchemy")
        for i, (flag, clv) in enumerate([(True, 1.25), (False, None), (True, -0.0)])
    ]
    with store.engine.begin() as conn:
        insert_rows(conn, segment_members, rows[:3])
        conn.execute(insert(segment_members), rows[3:])
        insert_rows(conn, segment_members, [])  # nothing to do
    with store.engine.connect() as conn:
        stored = conn.execute(select(segment_members).order_by("snapshot_id", "customer_id")).mappings().all()

    def without_snapshot(snapshot: str) -> list[dict[str, object]]:
        return [
            {k: v for k, v in r.items() if k != "snapshot_id"} for r in stored if r["snapshot_id"] == snapshot
        ]

    assert len(stored) == 6
    assert without_snapshot("by-driver") == without_snapshot("by-sqlalchemy")
    assert [r["consent"] for r in without_snapshot("by-driver")] == [True, False, True]
