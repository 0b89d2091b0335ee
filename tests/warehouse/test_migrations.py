"""The warehouse's ordered migrations: from empty and from release 0.1.0's schema to ``HEAD`` on DuckDB
and PostgreSQL, every column the code writes is created by a step, upgrades are idempotent and safe to
race on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from crm_analytics.ingest import suppression
from crm_analytics.ingest.contracts import CONTRACTS
from crm_analytics.ingest.tables import BATCH_COLUMNS, QUARANTINE_COLUMNS, contract_columns
from crm_analytics.models.segments import membership
from crm_analytics.profiles.tables import TABLES as PROFILE_TABLES
from crm_analytics.warehouse import Warehouse, migrations

HERE = Path(__file__).parent


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """An empty warehouse on each backend, not upgraded (unlike the ``warehouse`` fixture)."""
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with Warehouse(url) as wh:
        yield wh


def written_columns() -> dict[str, Mapping[str, str]]:
    """Every table the code writes with fixed columns -> those columns (name -> SQL type)."""
    tables: dict[str, Mapping[str, str]] = {
        name: contract_columns(contract) for name, contract in CONTRACTS.items()
    }
    tables["quarantine"] = QUARANTINE_COLUMNS
    tables["ingest_batches"] = BATCH_COLUMNS
    tables |= {name: columns for name, (columns, _key) in PROFILE_TABLES.items()}
    tables[membership.TABLE] = membership.COLUMNS
    tables[suppression.TABLE] = suppression.COLUMNS
    return tables


def missing_columns(warehouse: Warehouse, expected: Mapping[str, Mapping[str, str]]) -> list[str]:
    """``table.column`` for every expected column the warehouse lacks."""
    found = warehouse.fetch("SELECT table_name, column_name FROM information_schema.columns")
    present = set(zip(found["table_name"], found["column_name"], strict=True))
    return [f"{t}.{c}" for t, columns in expected.items() for c in columns if (t, c) not in present]


def run_script(warehouse: Warehouse, path: Path) -> None:
    with warehouse.transaction() as execute:
        for statement in path.read_text().split(";"):
            if statement.strip():
                execute(statement)


def test_an_empty_warehouse_upgraded_has_every_column_the_code_writes(empty: Warehouse) -> None:
    assert migrations.current_version(empty) == 0
    assert migrations.upgrade(empty) == [m.version for m in migrations.MIGRATIONS]
    assert migrations.current_version(empty) == migrations.HEAD
    missing = missing_columns(empty, written_columns())
    assert missing == [], f"columns the code writes but no migration step creates: {missing}"


def test_a_column_without_a_migration_step_is_named(empty: Warehouse) -> None:
    migrations.upgrade(empty)
    expected = {"transactions": {**contract_columns(CONTRACTS["transactions"]), "loyalty_tier": "TEXT"}}
    assert missing_columns(empty, expected) == ["transactions.loyalty_tier"]


def test_a_release_0_1_0_warehouse_is_upgraded_with_its_rows(empty: Warehouse) -> None:
    run_script(empty, HERE / "release_0_1_0.sql")
    with empty.transaction() as execute:
        execute(
            "INSERT INTO transactions (transaction_id, customer_id, source, amount) VALUES (?, ?, ?, ?)",
            ["T1", "C1", "crm", 12.5],
        )
    assert migrations.current_version(empty) == 0

    assert migrations.upgrade(empty) == [m.version for m in migrations.MIGRATIONS]

    assert migrations.current_version(empty) == migrations.HEAD
    kept = empty.fetch("SELECT transaction_id, amount FROM transactions")
    assert kept.to_dict("records") == [{"transaction_id": "T1", "amount": 12.5}]
    assert missing_columns(empty, written_columns()) == []


def test_a_second_upgrade_applies_nothing(empty: Warehouse) -> None:
    migrations.upgrade(empty)
    assert migrations.upgrade(empty) == []
    assert migrations.current_version(empty) == migrations.HEAD


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgres_record_each_version_once(postgres_url: str) -> None:
    start = threading.Barrier(4, timeout=60)
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def upgrade() -> None:
        with Warehouse(postgres_url) as wh:  # its own connection, as another process would have
            start.wait()
            try:
                applied.append(migrations.upgrade(wh))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "an upgrade hung"
    assert errors == []
    assert sorted(v for versions in applied for v in versions) == [m.version for m in migrations.MIGRATIONS]
    with Warehouse(postgres_url) as wh:
        recorded = wh.fetch(f"SELECT version, COUNT(*) AS n FROM {migrations.VERSION_TABLE} GROUP BY version")
    assert sorted(recorded["version"]) == [m.version for m in migrations.MIGRATIONS]
    assert set(recorded["n"]) == {1}
