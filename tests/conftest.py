"""Shared fixtures: every test runs in its own folder with its own warehouse and settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from crm_analytics.settings import Settings, folder_settings, load_settings
from crm_analytics.warehouse import Warehouse, migrations

POSTGRES_ADMIN_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def project_env(folder: Path) -> dict[str, str]:
    """The CRM_* variables of a project folder of its own: warehouse, MLflow and serving store inside."""
    return folder_settings(folder) | {
        # the key of erasures in this folder, whichever test erases (the default is per user)
        "CRM_ERASURE_KEY_FILE": str(folder / "config" / "erasure.key"),
        "CRM_SEGMENTS_MIN_SPLIT_HALF_ARI": "-1",  # see ``isolated``
    }


# the longest test files, started first so that `make test`'s two workers each take one at once and
# share the rest afterwards, instead of one of them running alone at the end
LONGEST_FIRST = ("test_monitoring_days.py", "test_daily_refresh_postgres.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is a whole-flow run: marked ``e2e`` (``make test-fast`` skips them);
    the longest files go first (a stable sort: the rest keep their order)."""
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)


@contextmanager
def in_project(folder: Path) -> Iterator[Settings]:
    """For a module-scoped project (set up before ``isolated``): the caller's CRM_* variables cleared,
    ``folder``'s set and ``folder`` current while the block runs; yields its settings."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("CRM_"):
                patch.delenv(name)
        for name, value in project_env(folder).items():
            patch.setenv(name, value)
        patch.chdir(folder)
        yield load_settings()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temporary folder with no CRM_* variables from the caller's shell or .env (but
    CRM_SEGMENTS_MIN_SPLIT_HALF_ARI=0), and a per-user config folder of its own (where the erasure key
    goes by default)."""
    for name in list(os.environ):
        if name.startswith("CRM_") and name != "CRM_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    # test chains of a few hundred guests have no stable clusters: registering them anyway keeps the
    # three families every flow expects; the refusal has its own tests (models/segments)
    monkeypatch.setenv("CRM_SEGMENTS_MIN_SPLIT_HALF_ARI", "-1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """The warehouse on each backend (a DuckDB file, a fresh database on the local PostgreSQL), with
    its schema as the jobs leave it (``migrations.upgrade``)."""
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with Warehouse(url) as wh:
        migrations.upgrade(wh)
        yield wh


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
