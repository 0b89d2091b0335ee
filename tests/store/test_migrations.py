"""The serving store's Alembic migrations: from empty and from release 0.1.0's schema to head, on SQLite
and PostgreSQL; the result matches ``store.tables``; upgrades are idempotent and safe to race."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient

from crm_analytics.serving.app import create_app
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore, migrations
from crm_analytics.store.tables import metadata

HERE = Path(__file__).parent


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty serving store on each backend (a SQLite file, a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'serving.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def schema_diff(engine: sa.Engine) -> list[Any]:
    """What autogenerate would change to make the database match ``tables.metadata`` (empty: in step)."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def release_0_1_0(engine: sa.Engine) -> None:
    """Create the schema exactly as release 0.1.0 did (its DDL, captured once into a file)."""
    name = "postgresql" if engine.dialect.name == "postgresql" else "sqlite"
    script = (HERE / f"release_0_1_0_{name}.sql").read_text()
    lines = (line for line in script.splitlines() if not line.startswith("--"))
    with engine.begin() as conn:
        for statement in "\n".join(lines).split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)


def snapshot_of_schema(engine: sa.Engine) -> dict[str, Any]:
    inspector = sa.inspect(engine)
    return {
        table: ([c["name"] for c in inspector.get_columns(table)], inspector.get_indexes(table))
        for table in sorted(inspector.get_table_names())
    }


def test_an_empty_store_upgraded_to_head_matches_the_tables(store_url: str) -> None:
    store = ServingStore(store_url)
    assert store.schema_problem() is not None  # opening runs no DDL
    assert sa.inspect(store.engine).get_table_names() == []
    store.upgrade()
    assert migrations.current(store.engine) == migrations.head()
    assert set(metadata.tables) <= set(sa.inspect(store.engine).get_table_names())
    assert schema_diff(store.engine) == []
    assert store.schema_problem() is None


def test_a_release_0_1_0_store_is_adopted_with_its_rows(store_url: str) -> None:
    engine = ServingStore(store_url).engine
    release_0_1_0(engine)
    created = datetime(2026, 3, 1, 10, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO serving_feedback (event_id, event, offer_id, customer_id, occurred_at, "
                "received_at, key_id, decision_id, propensity) VALUES ('e1', 'shown', 'O01', 'U1', "
                ":at, :at, 'k_1', 'd1', 0.25)"
            ),
            {"at": created.replace(tzinfo=None)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO api_keys (key_id, name, roles, secret_sha256, created_at) "
                "VALUES ('k_1', 'booking desk', 'booking', :sha, :at)"
            ),
            {"sha": "0" * 64, "at": created},
        )
    assert migrations.current(engine) is None

    store = ServingStore(store_url).upgrade()

    assert migrations.current(store.engine) == migrations.head()
    with store.engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        feedback = conn.execute(sa.text("SELECT event_id, decision_id FROM serving_feedback"))
        keys = conn.execute(sa.text("SELECT key_id, name FROM api_keys")).all()
        assert [tuple(r) for r in feedback] == [("e1", "d1")]
    # the caller's propensity is not kept (0003): the offer log takes it from the decision log
    assert "propensity" not in {c["name"] for c in sa.inspect(store.engine).get_columns("serving_feedback")}
    assert versions == [migrations.head()]
    assert [tuple(r) for r in keys] == [("k_1", "booking desk")]
    assert schema_diff(store.engine) == []


def test_a_second_upgrade_changes_nothing(store_url: str) -> None:
    store = ServingStore(store_url).upgrade()
    before = snapshot_of_schema(store.engine)
    store.upgrade()
    assert snapshot_of_schema(store.engine) == before
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM alembic_version")).scalar() == 1


def test_concurrent_upgrades_of_a_fresh_store_all_succeed(store_url: str) -> None:
    start = threading.Barrier(4, timeout=60)
    errors: list[BaseException] = []

    def upgrade() -> None:
        store = ServingStore(store_url)  # its own engine, as another process would have
        start.wait()
        try:
            store.upgrade()
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.engine.dispose()

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "an upgrade hung"
    assert errors == []
    engine = ServingStore(store_url).engine
    assert migrations.current(engine) == migrations.head()
    assert schema_diff(engine) == []


def test_get_readyz_store_not_upgraded_is_503_naming_the_command(tmp_path: Path) -> None:
    settings = Settings(serving_store_url=f"sqlite:///{tmp_path / 'serving.db'}")
    with TestClient(create_app(settings, load_models=False)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "crm score" in response.json()["detail"]
        assert sa.inspect(client.app.state.store.engine).get_table_names() == []  # type: ignore[attr-defined]
