"""Compacting a SQLite serving store after an erasure: the deleted rows' bytes, which SQLite keeps in
free pages and in its WAL, are gone from both files; a reader that holds the WAL is reported."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from crm_analytics.store import Decision, ServingStore
from crm_analytics.store.compaction import compact

ERASED = "U-ERASE-ME-0042"


def files(path: Path) -> bytes:
    """The store's database and WAL bytes together."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture
def erased(tmp_path: Path) -> tuple[ServingStore, Path]:
    """A store with 300 decisions, 100 of them the erased guest's, deleted; the API's pooled
    connection keeps the WAL."""
    path = tmp_path / "serving.db"
    store = ServingStore(f"sqlite:///{path}", lock_wait_ms=200).upgrade()
    store.record_decisions(
        [
            Decision(
                f"d{i:04d}", ERASED if i % 3 == 0 else f"U{i}", datetime(2026, 3, 1), (("O01", 0.5),), {}, "k"
            )
            for i in range(300)
        ]
    )
    assert store.erase([ERASED]) == 100
    assert ERASED.encode() in files(path)  # why the store is compacted
    return store, path


def test_compact_leaves_no_bytes_of_deleted_rows_in_the_store_or_its_wal(
    erased: tuple[ServingStore, Path],
) -> None:
    store, path = erased

    assert compact(store.engine) is True

    assert ERASED.encode() not in files(path)
    assert path.with_name(path.name + "-wal").stat().st_size == 0
    assert len(store.decisions(f"d{i:04d}" for i in range(300))) == 200  # the others are kept


def test_a_reader_holding_the_wal_is_reported(erased: tuple[ServingStore, Path]) -> None:
    store, path = erased
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM serving_decisions").fetchone()  # a snapshot held open
        assert compact(store.engine) is False
    finally:
        reader.close()
    assert compact(store.engine) is True
    assert ERASED.encode() not in files(path)
