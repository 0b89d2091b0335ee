"""Files holding personal data or secrets are the owner's alone: the access log (and its tombstones on
erasure), the databases the project creates, and everything the ``crm`` command writes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_analytics.store import ServingStore
from crm_analytics.store.access_log import AccessLog, erase_from_log
from crm_analytics.warehouse import Warehouse


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask 022, whatever an earlier test left (files 0644 unless made private)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_access_log_is_created_private_and_appends_lines(tmp_path: Path, loose_umask: None) -> None:
    log = AccessLog(tmp_path / "data" / "access.jsonl")
    log.write({"route": "/v1/customers/{customer_id}", "customers": ["U00aa"]})
    log.write({"route": "/v1/scores", "customers": []})
    log.close()

    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [line["route"] for line in lines] == ["/v1/customers/{customer_id}", "/v1/scores"]
    assert mode(log.path) == 0o600


def test_erase_from_log_tombstones_the_ids_in_place(tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "access.jsonl")
    log.write({"customers": ["U00aa", "U00bb"]})
    log.write({"customers": ["U00aa0"]})  # another id that merely starts alike stays
    size = log.path.stat().st_size

    replaced = erase_from_log(log.path, ["U00aa", "A-77"])
    log.write({"customers": ["U00cc"]})  # the writer's descriptor still appends to the same file
    log.close()

    lines = [json.loads(line)["customers"] for line in log.path.read_text().splitlines()]
    assert replaced == 1
    assert lines == [["erase", "U00bb"], ["U00aa0"], ["U00cc"]]
    assert b'U00aa"' not in log.path.read_bytes()
    assert log.path.stat().st_size > size  # nothing was rewritten elsewhere or truncated
    assert erase_from_log(tmp_path / "missing.jsonl", ["U00aa"]) == 0


def test_new_databases_are_private(tmp_path: Path, loose_umask: None) -> None:
    with Warehouse(f"duckdb:///{tmp_path / 'w' / 'warehouse.duckdb'}"):
        pass
    store = ServingStore(f"sqlite:///{tmp_path / 's' / 'serving.db'}").upgrade()
    store.engine.dispose()

    assert mode(tmp_path / "w" / "warehouse.duckdb") == 0o600
    data_files = [p for p in (tmp_path / "s").glob("serving.db*") if not p.name.endswith("-lock")]
    assert tmp_path / "s" / "serving.db" in data_files
    assert {mode(p) for p in data_files} == {0o600}  # the database, and any -wal or -shm beside it


def test_crm_command_writes_private_files(tmp_path: Path, loose_umask: None) -> None:
    out = tmp_path / "settings.md"
    done = subprocess.run(
        [sys.executable, "-m", "crm_analytics.cli", "config", "--docs-out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert mode(out) == 0o600
