"""Erasure suppression: a keyed hash per erased subject, and ingest dropping erased rows before quarantine."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.ingest.suppression import (
    REASON,
    TABLE,
    Kind,
    Suppressions,
    erasure_key,
    erasure_key_path,
    key_in_data_folder,
    load_suppressions,
    record_suppressions,
    subject_hash,
    suppressed_mask,
)
from crm_analytics.settings import Settings, load_settings
from crm_analytics.warehouse import Warehouse
from tests.ingest.helpers import GOOD_TRANSACTION, write_csv

CUSTOMER = {"source_customer_id": "C1", "email": "ann@example.org", "updated_at": "2024-01-01T00:00:00"}
OFFER = {
    "shown_at": "2024-03-01T10:00:00",
    "source": "shop",
    "offer_id": "O1",
    "propensity": "0.5",
    "accepted": "true",
    "responded_at": "2024-03-01T10:05:00",
}


def test_key_file_is_created_once_with_mode_0600_and_the_hash_is_stable(settings: Settings) -> None:
    key = erasure_key(settings)

    path = erasure_key_path(settings)
    assert path == Path(os.environ["XDG_CONFIG_HOME"]) / "crm-analytics" / "erasure.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not (settings.data_dir / "erasure.key").exists()  # a copy of the data carries no key
    assert key_in_data_folder(settings) is None
    assert erasure_key(load_settings()) == key  # a later run reads the same key
    first = subject_hash(key, "account", "shop", "C1")
    assert subject_hash(erasure_key(load_settings()), "account", "shop", "C1") == first
    assert len(first) == 64
    assert "C1" not in first


def test_a_key_an_earlier_release_left_in_the_data_folder_is_used_and_a_move_is_advised(
    settings: Settings,
) -> None:
    legacy = settings.data_dir / "erasure.key"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("old-key\n")

    assert erasure_key(settings) == b"old-key"
    assert erasure_key_path(settings) == legacy
    advice = key_in_data_folder(settings)
    assert advice is not None
    assert f"mv {legacy} {Path(os.environ['XDG_CONFIG_HOME']) / 'crm-analytics' / 'erasure.key'}" in advice
    assert not (Path(os.environ["XDG_CONFIG_HOME"]) / "crm-analytics").exists()  # no second key made


def test_a_configured_key_file_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRM_ERASURE_KEY_FILE", str(tmp_path / "secrets" / "crm.key"))
    key = erasure_key(load_settings())

    assert (tmp_path / "secrets" / "crm.key").read_bytes().strip() == key
    assert key_in_data_folder(load_settings()) is None


def test_hash_is_keyed_and_separates_kinds_and_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_ERASURE_KEY", "key-one")
    one = erasure_key(load_settings())
    monkeypatch.setenv("CRM_ERASURE_KEY", "key-two")
    two = erasure_key(load_settings())

    assert one == b"key-one"
    assert not erasure_key_path(load_settings()).exists()  # a configured key writes no file
    hashes = {
        subject_hash(one, "account", "shop", "C1"),
        subject_hash(two, "account", "shop", "C1"),
        subject_hash(one, "transaction", "shop", "C1"),
        subject_hash(one, "account", "crm", "C1"),
    }
    assert len(hashes) == 4


def test_empty_configured_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_ERASURE_KEY", " ")
    with pytest.raises(ValueError, match="CRM_ERASURE_KEY: must not be empty"):
        erasure_key(load_settings())


def test_nothing_is_checked_and_no_key_is_made_while_nobody_was_erased(
    warehouse: Warehouse, settings: Settings
) -> None:
    with warehouse.transaction() as execute:
        record_suppressions(execute, b"k", [])
    assert load_suppressions(warehouse, settings) is None  # empty table
    assert not erasure_key_path(settings).exists()


def test_recording_is_idempotent_and_stores_no_ids(warehouse: Warehouse, settings: Settings) -> None:
    key = erasure_key(settings)
    subjects: list[tuple[Kind, str, str]] = [
        ("account", "shop", "C1"),
        ("transaction", "shop", "T1"),
        ("account", "shop", "C1"),
    ]
    for _ in range(2):
        with warehouse.transaction() as execute:
            assert record_suppressions(execute, key, subjects) == 2

    stored = warehouse.fetch(f"SELECT * FROM {TABLE}")
    assert sorted(stored["kind"]) == ["account", "key_check", "transaction"]
    assert not stored.astype(str).apply(lambda c: c.str.contains("C1|T1|shop")).to_numpy().any()


def test_ingest_refuses_to_run_with_a_lost_or_different_key(
    warehouse: Warehouse, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _erase(warehouse, settings)
    erasure_key_path(settings).unlink()
    with pytest.raises(LookupError, match="no erasure key, but the warehouse holds erasure suppressions"):
        load_suppressions(warehouse, settings)
    assert not erasure_key_path(settings).exists()  # never replaced by a fresh key silently

    monkeypatch.setenv("CRM_ERASURE_KEY", "another key")
    with pytest.raises(LookupError, match="erasure_suppressions: recorded with another erasure key"):
        load_suppressions(warehouse, load_settings())


def test_mask_reads_raw_chunks_like_validation_does() -> None:
    key = b"k"
    suppressions = Suppressions(key, frozenset({subject_hash(key, "account", "shop", "C1")}))
    raw = pd.DataFrame(
        {" Source": ["shop", "shop ", "crm", None, "shop"], "CUSTOMER_ID": [" C1", "C1", "C1", "C1", "C2"]},
        index=pd.RangeIndex(1, 6),
        dtype=object,
    )

    mask = suppressed_mask(raw, "transactions", suppressions)

    assert mask.tolist() == [True, True, False, False, False]
    assert not suppressed_mask(raw, "offers", suppressions).any()


def _erase(warehouse: Warehouse, settings: Settings) -> None:
    """Suppress account C1 of the CRM and of the shop, and shop transaction T1 (of C1)."""
    subjects: list[tuple[Kind, str, str]] = [
        ("account", "crm", "C1"),
        ("account", "shop", "C1"),
        ("transaction", "shop", "T1"),
    ]
    with warehouse.transaction() as execute:
        record_suppressions(execute, erasure_key(settings), subjects)


def test_reingest_of_an_erased_customer_is_dropped_before_quarantine(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    _erase(warehouse, settings)
    bad_email = CUSTOMER | {"email": "not an e-mail"}  # would be quarantined, with its content
    files = {
        # no source column: the source comes from the file name, as for any customer file
        "customers_crm.csv": [bad_email, CUSTOMER | {"source_customer_id": "C2", "email": "bo@example.org"}],
        "transactions.csv": [
            GOOD_TRANSACTION | {"transaction_id": "T1", "customer_id": "C1"},
            GOOD_TRANSACTION | {"transaction_id": "T2", "customer_id": "C1", "amount": "abc"},
            GOOD_TRANSACTION | {"transaction_id": "T3", "customer_id": "C2"},
        ],
        "transaction_items.csv": [
            {"source": "shop", "transaction_id": t, "line_no": "1", "item_id": "x", "quantity": "1"}
            | {"unit_price": "25.50", "category": "room"}
            for t in ("T1", "T3")
        ],
        "offer_log.csv": [
            OFFER | {"event_id": "E1", "customer_id": "C1", "transaction_id": "T2"},
            OFFER | {"event_id": "E2", "customer_id": "", "transaction_id": "T1"},  # by transaction
            OFFER | {"event_id": "E3", "customer_id": "C2", "transaction_id": "T3"},
        ],
    }

    reports = {
        name: ingest_file(warehouse, write_csv(tmp_path / name, rows), settings)
        for name, rows in files.items()
    }

    counts = {n: (r.rows_read, r.rows_new, r.rows_suppressed, r.rows_rejected) for n, r in reports.items()}
    assert counts == {
        "customers_crm.csv": (2, 1, 1, 0),
        "transactions.csv": (3, 1, 2, 0),
        "transaction_items.csv": (2, 1, 1, 0),
        "offer_log.csv": (3, 1, 2, 0),
    }
    assert all(r.rows_duplicate == 0 and r.message.endswith(REASON) for r in reports.values())
    assert reports["transactions.csv"].message == f"2 rows dropped: {REASON}"
    assert reports["transactions.csv"].as_dict()["rows_suppressed"] == 2
    assert warehouse.count("quarantine") == 0
    kept = {
        "customer_records": ("source_customer_id", ["C2"]),
        "transactions": ("transaction_id", ["T3"]),
        "transaction_items": ("transaction_id", ["T3"]),
        "offer_log": ("event_id", ["E3"]),
    }
    for table, (column, values) in kept.items():
        assert warehouse.fetch(f'SELECT "{column}" FROM "{table}"')[column].tolist() == values


def test_other_sources_and_unerased_rows_still_quarantine(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    _erase(warehouse, settings)
    rows = [
        GOOD_TRANSACTION | {"transaction_id": "T1", "customer_id": "C1", "source": "other"},  # same id
        GOOD_TRANSACTION | {"transaction_id": "T9", "customer_id": "C9", "amount": "abc"},
    ] + [GOOD_TRANSACTION | {"transaction_id": f"T{i}", "customer_id": "C9"} for i in range(10, 40)]

    report = ingest_file(warehouse, write_csv(tmp_path / "transactions.csv", rows), settings)

    assert (report.rows_new, report.rows_suppressed, report.rows_rejected) == (31, 0, 1)
    assert report.message == ""
    assert warehouse.count("quarantine") == 1
