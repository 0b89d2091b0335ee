"""Batch scoring in chunks: the same snapshot whatever the chunk size, progress reported, memory bounded
by the chunk (the 1M-customer run is in benchmarks/batch_scoring.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crm_analytics.jobs.score import score_all
from crm_analytics.store import ServingStore
from crm_analytics.warehouse import Warehouse, id_ranges
from tests.serving.conftest import Served

TABLES = {
    "serving_customers": "customer_id",
    "serving_segment_members": "segment, customer_id",
    "serving_contacts": "kind, value, customer_id",
    "serving_lookup_records": "unique_id",
}
INTERVAL = ("clv_low", "clv_high")  # Monte Carlo: its random streams restart with each chunk


def snapshot_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {
            table: [
                dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}")).mappings()
            ]
            for table, order in TABLES.items()
        }
    engine.dispose()
    for rows in out.values():
        for row in rows:
            row.pop("snapshot_id")
    for row in out["serving_customers"]:
        scores = json.loads(row["scores"]) if row["scores"] else None
        row["scores"] = {k: v for k, v in scores.items() if k not in INTERVAL} if scores else None
    return out


@pytest.mark.slow  # whole runs: left to `make test`, out of the fast loop
def test_chunks_give_the_same_snapshot_as_one_pass(served: Served, tmp_path: Path) -> None:
    whole, chunked = (f"sqlite:///{tmp_path / name}.db" for name in ("whole", "chunked"))
    seen: list[tuple[str, int, int]] = []
    with Warehouse(served.settings.warehouse_url) as warehouse:
        one = score_all(served.settings, warehouse, ServingStore(whole).upgrade())
        many = score_all(
            served.settings,
            warehouse,
            ServingStore(chunked).upgrade(),
            chunk_customers=37,
            progress=lambda *p: seen.append(p),
        )
    assert (many.customers, many.scored, many.with_brief, many.segment_rows) == (
        one.customers,
        one.scored,
        one.with_brief,
        one.segment_rows,
    )
    assert len(seen) == -(-one.customers // 37)  # one report per chunk
    assert seen[-1] == ("scoring customers", one.customers, one.customers)
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    expected, got = snapshot_rows(whole), snapshot_rows(chunked)
    for table in TABLES:
        assert got[table] == expected[table], table
    assert len(expected["serving_lookup_records"]) > one.customers  # every source record, for names


def test_the_scores_reach_the_warehouse_once_per_cutoff(served: Served, tmp_path: Path) -> None:
    with Warehouse(served.settings.warehouse_url) as warehouse:
        report = score_all(
            served.settings, warehouse, ServingStore(f"sqlite:///{tmp_path / 's.db'}").upgrade()
        )
        score_all(
            served.settings,
            warehouse,
            ServingStore(f"sqlite:///{tmp_path / 's.db'}").upgrade(),
            chunk_customers=50,
        )
        stored = warehouse.fetch(f"SELECT * FROM customer_scores WHERE as_of = DATE '{report.as_of}'")
        tables = warehouse.fetch("SELECT table_name FROM information_schema.tables")["table_name"]
        leftovers = [t for t in tables if t.startswith("_stage_scores_")]
    assert len(stored) == report.scored  # replaced, not appended, by the second run
    assert stored["customer_id"].is_unique
    assert stored["churn_probability"].between(0, 1).all()
    assert (stored["clv_low"] <= stored["clv_high"]).all()
    scored_by = {name: v for name, v in report.models.items() if not name.startswith("crm-segments-")}
    assert json.loads(stored["models"].iloc[0]) == scored_by  # the snapshot also names the segments
    assert leftovers == []


def test_id_ranges_cover_every_id_once() -> None:
    ids = [f"U{i:04d}" for i in range(10)]
    ranges = id_ranges(ids, 4)
    assert [(r.low, r.high) for r in ranges] == [(None, "U0004"), ("U0004", "U0008"), ("U0008", None)]
    with pytest.raises(ValueError, match="per_range"):
        id_ranges(ids, 0)
