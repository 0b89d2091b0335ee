"""A scoring run copies the personal rows (brief, profile, contacts, look-up records) of customers no
profile build has touched since the active snapshot, and builds the others': the snapshot it writes is
the one a run without anything to copy writes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from crm_analytics.jobs.score import score_all
from crm_analytics.profiles.build import build_profiles
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore, snapshot_rows
from crm_analytics.warehouse import Warehouse
from tests.conftest import POSTGRES_ADMIN_URL
from tests.profiles.test_incremental import LATER, add_records, customer_with, links, raw_records
from tests.serving.conftest import Served
from tests.serving.test_scoring import TABLES
from tests.serving.test_scoring import snapshot_rows as snapshot_rows_of


@pytest.fixture
def warehouse(served: Served, tmp_path: Path) -> Iterator[Warehouse]:
    """A copy of the served folder's warehouse (this test changes its records)."""
    source = Path(served.settings.warehouse_url.removeprefix("duckdb:///"))
    shutil.copy(source, tmp_path / "w.duckdb")
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        yield wh


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'carried.db'}"
        return
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def merge_two_and_change_one(warehouse: Warehouse, folder: Path, settings: Settings) -> tuple[str, str, str]:
    """A record bridging customers x and y (they merge) and a new phone for customer z, ingested and
    re-linked incrementally; returns (x, y, z)."""
    with_email = customer_with(warehouse, "r.email IS NOT NULL")
    with_phone = customer_with(warehouse, "r.phone IS NOT NULL")
    x = with_email[0]
    y = next(c for c in with_phone if c != x)
    z = next(c for c in with_phone if c not in (x, y))
    first = raw_records(warehouse, x).iloc[0]
    bridge = {
        "source": "booking",
        "source_customer_id": "G-bridge",
        "email": first["email"],
        "phone": raw_records(warehouse, y)["phone"].dropna().iloc[0],
        "first_name": first["first_name"],
        "last_name": first["last_name"],
        "updated_at": LATER,
    }
    moved = raw_records(warehouse, z).iloc[0].drop(["ingest_batch_id", "row_hash"], errors="ignore")
    moved = moved.to_dict() | {"phone": "+44 20 7946 0958", "updated_at": LATER}
    # the served folder's settings: other tests erase customers there, and ingest then checks new rows
    # against the suppressions with its erasure key
    add_records(warehouse, folder, [bridge, moved], settings)
    return x, y, z


def test_unchanged_customers_are_carried_and_the_snapshot_is_the_same(
    served: Served, warehouse: Warehouse, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: Settings = served.settings
    monkeypatch.setattr(snapshot_rows, "STAGE_ROWS", 97)  # many copy windows, and their edges
    carried = ServingStore(store_url).upgrade()
    first = score_all(settings, warehouse, carried)
    assert first.carried == 0  # nothing to copy from yet
    x, y, z = merge_two_and_change_one(warehouse, tmp_path / "day", settings)
    build = build_profiles(warehouse, settings, incremental=True, log_run=False)
    assert build.incremental
    assert build.merges == 1

    copies: list[tuple[str, Any]] = []

    @sa.event.listens_for(carried.engine, "before_cursor_execute")
    def note_copy(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("INSERT") and "AS source" in statement:
            copies.append((statement, parameters))

    again = score_all(settings, warehouse, carried, chunk_customers=150)
    rebuilt_url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    rebuilt = score_all(settings, warehouse, ServingStore(rebuilt_url).upgrade(), chunk_customers=150)

    touched = set(links(warehouse)[lambda s: s.isin([x, y, z])].unique()) | {x, y, z}
    profiles = warehouse.count("customer_profiles")
    assert again.carried == profiles - len(touched & set(links(warehouse)))  # all but x, y and z
    assert rebuilt.carried == 0
    assert (again.customers, again.with_brief) == (rebuilt.customers, rebuilt.with_brief)
    got, expected = snapshot_rows_of(store_url), snapshot_rows_of(rebuilt_url)
    for table in TABLES:
        assert got[table] == expected[table], table
    third = score_all(settings, warehouse, carried, chunk_customers=150)  # from a carried snapshot
    assert third.carried == profiles
    assert snapshot_rows_of(store_url) == expected
    phones = {r["value"] for r in got["serving_contacts"] if r["customer_id"] == z and r["kind"] == "phone"}
    assert "+442079460958" in phones  # the changed record, built again
    merged_away = {x, y} - set(links(warehouse))
    assert merged_away
    assert not merged_away & {r["customer_id"] for r in got["serving_lookup_records"]}
    with carried.engine.connect() as conn:  # only the active snapshot's rows are left
        assert conn.execute(sa.text("SELECT COUNT(*) FROM serving_snapshots")).scalar() == 1
        if conn.dialect.name == "sqlite":  # each window of the copy reads its rows by rowid
            assert copies
            for statement, parameters in copies:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                source = [row[-1] for row in plan if " source " in f"{row[-1]} "]
                assert source, plan
                assert all("INTEGER PRIMARY KEY" in step for step in source), plan
    carried.engine.dispose()


def test_a_full_profile_build_carries_nothing(served: Served, warehouse: Warehouse, tmp_path: Path) -> None:
    store = ServingStore(f"sqlite:///{tmp_path / 's.db'}").upgrade()
    score_all(served.settings, warehouse, store)
    assert score_all(served.settings, warehouse, store).carried > 0  # nothing touched: everyone
    build_profiles(warehouse, served.settings, log_run=False)  # every customer stamped again
    assert score_all(served.settings, warehouse, store).carried == 0
