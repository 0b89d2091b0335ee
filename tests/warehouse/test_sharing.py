"""Many users at once: a second DuckDB writer waits, then stops naming the holder; readers open the
published copy while a writer holds the warehouse; a swap leaves open readers on the old copy; on
PostgreSQL readers open the warehouse itself."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from crm_analytics.errors import NotReadyError
from crm_analytics.jobs import ingest, publish
from crm_analytics.jobs.common import open_reader, open_warehouse
from crm_analytics.settings import Settings, load_settings
from crm_analytics.warehouse.locks import describe_command
from tests.conftest import project_env
from tests.ingest.helpers import transactions, write_csv

CRM = Path(sys.executable).with_name("crm")  # the console script installed beside this interpreter
HOLDER = """
import sys, time
import duckdb
con = duckdb.connect(sys.argv[1])  # read-write: DuckDB's one writer process
print("holding", flush=True)
time.sleep(120)
"""


def project(folder: Path, **extra: object) -> Settings:
    """Settings of a project folder of its own (``project_env``), with ``extra`` overriding them."""
    env = {name.removeprefix("CRM_").lower(): value for name, value in project_env(folder).items()}
    return load_settings(**(env | extra))


def load(settings: Settings, folder: Path, rows: int, start: int = 1) -> None:
    """Ingest ``rows`` transactions (ids from ``start``) into the warehouse."""
    path = write_csv(folder / f"transactions_{start}.csv", transactions(rows, start=start))
    assert ingest.ingest(settings, [path]).accepted


def count(reader_settings: Settings) -> int:
    with open_reader(reader_settings) as reader:
        return reader.count("transactions")


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Settings, subprocess.Popen[str]]]:
    """A warehouse with 12 transactions, published, then held read-write by another process."""
    settings = project(tmp_path)
    load(settings, tmp_path, 12)
    publish.publish(settings)
    script = tmp_path / "hold_warehouse.py"
    script.write_text(textwrap.dedent(HOLDER))
    warehouse_file = tmp_path / "data" / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, str(script), str(warehouse_file)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        yield settings, holder
    finally:
        holder.kill()
        holder.wait()


def run_crm(folder: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [str(CRM), *args],
        cwd=folder,
        env={**os.environ, **project_env(folder), "COLUMNS": "300", **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return result, time.monotonic() - started


@pytest.mark.slow  # whole runs: left to `make test`, out of the fast loop
def test_a_second_writer_waits_then_names_the_holder_in_one_line(
    held: tuple[Settings, subprocess.Popen[str]], tmp_path: Path
) -> None:
    _, holder = held
    write_csv(tmp_path / "more.csv", transactions(3, start=100))
    result, seconds = run_crm(tmp_path, "ingest", "more.csv", CRM_WAREHOUSE_LOCK_TIMEOUT="2")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"warehouse.duckdb is in use by another process (PID {holder.pid}: hold_warehouse.py)" in lines[0]
    assert "waited 2 s (CRM_WAREHOUSE_LOCK_TIMEOUT)" in lines[0]
    assert seconds >= 2.0  # it waited before giving up (start-up adds a few seconds on top)


def test_readers_read_the_published_copy_while_a_writer_holds_the_warehouse(
    held: tuple[Settings, subprocess.Popen[str]], tmp_path: Path
) -> None:
    settings, _ = held
    assert count(settings) == 12  # a notebook's reader, in this process
    result, _ = run_crm(tmp_path, "warehouse", "summary", "--json", CRM_WAREHOUSE_LOCK_TIMEOUT="0")
    assert result.returncode == 0, result.stderr
    assert '"transactions": 12' in result.stdout


def test_an_open_reader_keeps_the_old_copy_while_a_new_one_is_swapped_in(tmp_path: Path) -> None:
    settings = project(tmp_path)
    load(settings, tmp_path, 12)
    publish.publish(settings)
    killed = tmp_path / "data" / ".warehouse.read.duckdb.k1ll3d.tmp"  # a publish killed half-way
    killed.write_bytes(b"partial")
    with open_reader(settings) as old:
        before = old.fetch("SELECT COUNT(*) AS n, SUM(amount) AS total FROM transactions")
        load(settings, tmp_path, 5, start=200)
        report = publish.publish(settings)  # swaps the copy while ``old`` has it open
        after = old.fetch("SELECT COUNT(*) AS n, SUM(amount) AS total FROM transactions")
        assert after.equals(before)
        assert int(after["n"].iloc[0]) == 12
        assert count(settings) == 17  # a new reader, even in this process, opens the new copy
    assert report.path == str(tmp_path / "data" / "warehouse.read.duckdb")
    assert not list((tmp_path / "data").glob(".warehouse.read.duckdb.*"))  # no temporary file left
    copy, source = Path(report.path), tmp_path / "data" / "warehouse.duckdb"
    assert stat.S_IMODE(copy.stat().st_mode) == stat.S_IMODE(source.stat().st_mode)


def test_a_reader_cannot_write_the_copy(tmp_path: Path) -> None:
    settings = project(tmp_path)
    load(settings, tmp_path, 3)
    publish.publish(settings)
    with open_reader(settings) as reader, pytest.raises(duckdb.Error, match=r"read-only|read only"):
        reader.fetch("DELETE FROM transactions")
    assert count(settings) == 3


def test_readers_say_what_publishes_and_what_is_behind(tmp_path: Path) -> None:
    settings = project(tmp_path)
    with pytest.raises(NotReadyError, match=r"no read copy published yet .*run `crm warehouse publish`"):
        open_reader(settings)
    stale = tmp_path / "data" / "warehouse.read.duckdb"
    stale.parent.mkdir(parents=True)
    duckdb.connect(str(stale)).close()  # a copy without this release's schema
    with pytest.raises(NotReadyError, match=r"schema version 0 is older .*crm warehouse publish"):
        open_reader(settings)


def test_a_configured_copy_path_is_used(tmp_path: Path) -> None:
    settings = project(tmp_path, warehouse_read_copy=tmp_path / "shared" / "analysts.duckdb")
    load(settings, tmp_path, 4)
    assert publish.publish(settings).path == str(tmp_path / "shared" / "analysts.duckdb")
    assert count(settings) == 4


def test_holder_commands_keep_subcommands_and_drop_values() -> None:
    python = "/usr/bin/python3.11"
    assert describe_command([python, "/v/bin/crm", "refresh", "--as-of", "2025-01-01"]) == "crm refresh"
    assert describe_command([python, "/v/bin/crm", "profiles", "lookup", "--email", "a@b.org"]) == (
        "crm profiles lookup"
    )
    assert describe_command(["crm", "profiles", "show", "U001f2c155b0469e9"]) == "crm profiles show"
    assert describe_command([python, "-m", "ipykernel_launcher", "-f", "/k.json"]) == "ipykernel_launcher"
    assert describe_command([python, "notebook.py", "anna@example.org", "+44 20"]) == "notebook.py"


@pytest.mark.postgres
def test_on_postgres_readers_open_the_warehouse_itself(postgres_url: str, tmp_path: Path) -> None:
    settings = project(tmp_path, warehouse_url=postgres_url)
    with pytest.raises(NotReadyError, match="schema version 0 is older"):
        open_reader(settings)  # nothing written yet: a reader runs no DDL
    load(settings, tmp_path, 6)
    report = publish.publish(settings)
    assert (report.backend, report.path) == ("postgres", None)
    assert not (tmp_path / "data" / "warehouse.read.duckdb").exists()
    with open_warehouse(settings) as writer, open_reader(settings) as reader:  # at once (MVCC)
        assert (reader.backend, reader.url, reader.read_only) == ("postgres", postgres_url, False)
        assert reader.count("transactions") == 6
        with writer.transaction() as execute:
            execute("DELETE FROM transactions WHERE transaction_id = 'T1'")
        assert reader.count("transactions") == 5
