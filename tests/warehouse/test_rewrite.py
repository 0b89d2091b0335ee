"""Rewriting the DuckDB warehouse file after deletions: the deleted rows' bytes, which DuckDB keeps
after CHECKPOINT and VACUUM, are gone from the file and its read copy; everything else is the same."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from crm_analytics.jobs import ingest, publish
from crm_analytics.jobs.common import open_warehouse
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse, read_copy_path
from crm_analytics.warehouse.rewrite import _locked, rewrite_file
from tests.ingest.helpers import transactions, write_csv
from tests.warehouse.test_sharing import project

ERASED = "T-ERASE-ME-4711"


def loaded(tmp_path: Path) -> Settings:
    """A project whose warehouse holds 2,000 transactions, one of them ERASED, with a read copy."""
    settings = project(tmp_path)
    rows = transactions(1_999) + transactions(1, transaction_id=ERASED)
    assert ingest.ingest(settings, [write_csv(tmp_path / "transactions.csv", rows)]).accepted
    publish.publish(settings)
    return settings


def warehouse_file(settings: Settings) -> Path:
    return Path(settings.warehouse_url.removeprefix("duckdb:///"))


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """Every table's rows (sorted), the constraints and the columns of a DuckDB database."""
    names = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
    found: dict[str, object] = {
        t: sorted(map(str, con.execute(f'SELECT * FROM "{t}"').fetchall())) for t in names
    }
    found["constraints"] = con.execute(
        "SELECT table_name, constraint_type, constraint_text FROM duckdb_constraints() ORDER BY ALL"
    ).fetchall()
    found["columns"] = con.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns ORDER BY ALL"
    ).fetchall()
    return found


def test_rewrite_removes_deleted_rows_bytes_that_checkpoint_and_vacuum_keep(tmp_path: Path) -> None:
    settings = loaded(tmp_path)
    path = warehouse_file(settings)
    with open_warehouse(settings) as warehouse:
        with warehouse.transaction() as execute:
            assert execute("DELETE FROM transactions WHERE transaction_id = ?", [ERASED]) == 1
        warehouse.checkpoint()
        warehouse.ibis.con.execute("VACUUM transactions")
        warehouse.checkpoint()
        assert ERASED.encode() in path.read_bytes()  # why the file is rewritten
        before = snapshot(warehouse.ibis.con)
        killed = path.parent / f".{path.name}.k1ll3d.rewrite"  # a rewrite killed half-way
        killed.mkdir()
        (killed / path.name).write_bytes(b"a copy with the person in it: " + ERASED.encode())

        assert rewrite_file(warehouse, settings) == path

    assert ERASED.encode() not in path.read_bytes()
    assert not killed.exists()
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    with duckdb.connect(str(path), read_only=True) as con:
        assert snapshot(con) == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    copy = read_copy_path(settings)
    assert copy is not None
    assert ERASED.encode() not in copy.read_bytes()  # republished from the rewrite
    more = write_csv(tmp_path / "transactions_more.csv", transactions(2, start=5_000))
    assert ingest.ingest(settings, [more]).accepted  # the new file takes writes
    with open_warehouse(settings) as warehouse:
        assert warehouse.count("transactions") == 2_001


def test_no_process_opens_the_new_file_while_it_is_locked_for_the_swap(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    duckdb.connect(str(path)).close()
    opener = [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}, read_only=True)"]
    with _locked(path):
        refused = subprocess.run(opener, capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert "Could not set lock" in refused.stderr  # DuckDB's own lock: a waiting opener retries
    assert subprocess.run(opener, check=False).returncode == 0


@pytest.mark.parametrize("url", ["duckdb:///:memory:", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_nothing_to_rewrite_without_a_file(url: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if url == "postgres":
        url = request.getfixturevalue("postgres_url")
    with Warehouse(url) as warehouse:
        assert rewrite_file(warehouse, project(tmp_path, warehouse_url=url)) is None
        assert warehouse.fetch("SELECT 1 AS one")["one"].tolist() == [1]  # still open
