"""Ingest end to end on DuckDB: quarantine, idempotency, atomicity, refusal, every input kind."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from crm_analytics.ingest import pipeline
from crm_analytics.ingest.pipeline import BatchRefusedError, ingest_file, ingest_query
from crm_analytics.ingest.validate import ContractError
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse
from tests.ingest.helpers import GOOD_TRANSACTION, transactions, write_csv


def table(warehouse: Warehouse, name: str) -> pd.DataFrame:
    return warehouse.fetch(f'SELECT * FROM "{name}"')


def test_ingest_loads_valid_rows_and_quarantines_bad_ones_exactly(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    rows = transactions(40)
    rows[4] |= {"amount": "abc"}
    rows[9] |= {"currency": "EURO", "timestamp": "not a date"}  # one row, two problems
    path = write_csv(tmp_path / "transactions.csv", rows)

    report = ingest_file(warehouse, path, settings)

    assert (report.rows_read, report.rows_new, report.rows_rejected, report.rows_duplicate) == (40, 38, 2, 0)
    assert warehouse.count("transactions") == 38
    quarantine = table(warehouse, "quarantine").sort_values(["row_number", "column_name"])
    assert quarantine[["row_number", "column_name", "reason"]].values.tolist() == [
        [5, "amount", "not a number"],
        [10, "currency", "not an ISO 4217 currency code (three capital letters, e.g. EUR)"],
        [10, "timestamp", "not an ISO 8601 date/time"],
    ]
    assert set(quarantine["source_file"]) == {str(path)}
    assert json.loads(quarantine["payload"].iloc[0])["transaction_id"] == "T5"
    assert report.rejections_by_reason == {
        "amount: not a number": 1,
        "currency: not an ISO 4217 currency code (three capital letters, e.g. EUR)": 1,
        "timestamp: not an ISO 8601 date/time": 1,
    }


def test_reingesting_the_same_file_adds_nothing(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    rows = transactions(20)
    rows[3] |= {"amount": "abc"}
    path = write_csv(tmp_path / "transactions.csv", rows)
    ingest_file(warehouse, path, settings)

    again = ingest_file(warehouse, path, settings)

    assert (again.rows_new, again.rows_duplicate, again.rows_rejected) == (0, 19, 1)
    assert warehouse.count("transactions") == 19
    assert warehouse.count("quarantine") == 1
    assert warehouse.count("ingest_batches") == 2


def test_overlapping_file_adds_only_the_new_rows(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    ingest_file(warehouse, write_csv(tmp_path / "transactions_1.csv", transactions(30)), settings)

    report = ingest_file(
        warehouse, write_csv(tmp_path / "transactions_2.csv", transactions(30, start=21)), settings
    )

    assert (report.rows_new, report.rows_duplicate) == (20, 10)
    assert warehouse.count("transactions") == 50


def test_duplicates_inside_a_batch(warehouse: Warehouse, settings: Settings, tmp_path: Path) -> None:
    rows = transactions(5)
    rows.append(rows[0])  # exact repeat: a duplicate, kept once
    rows.append(rows[1] | {"amount": "99"})  # same key, other values: quarantined, first one kept
    report = ingest_file(warehouse, write_csv(tmp_path / "transactions.csv", rows), settings)

    assert (report.rows_new, report.rows_duplicate, report.rows_rejected) == (5, 1, 1)
    kept = table(warehouse, "transactions").set_index("transaction_id")
    assert kept.loc["T2", "amount"] == 25.5
    quarantine = table(warehouse, "quarantine")
    assert quarantine[["row_number", "column_name", "reason"]].values.tolist() == [
        [7, "source,transaction_id", "duplicate key with other values than row 2"]
    ]


def test_changed_resend_is_quarantined_not_lost(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    ingest_file(warehouse, write_csv(tmp_path / "transactions.csv", transactions(3)), settings)
    changed = transactions(3)
    changed[0] |= {"amount": "30"}

    report = ingest_file(warehouse, write_csv(tmp_path / "transactions_resend.csv", changed), settings)

    assert (report.rows_new, report.rows_duplicate, report.rows_rejected) == (0, 2, 1)
    assert table(warehouse, "quarantine")["reason"].tolist() == [
        "key already in the warehouse with other values"
    ]
    assert table(warehouse, "transactions").set_index("transaction_id").loc["T1", "amount"] == 25.5


def test_failure_mid_merge_leaves_the_warehouse_as_it_was(
    warehouse: Warehouse, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_file(warehouse, write_csv(tmp_path / "transactions.csv", transactions(5)), settings)
    rows = transactions(30, start=6)
    rows[0] |= {"amount": "oops"}
    path = write_csv(tmp_path / "transactions_2.csv", rows)

    def broken_quarantine_insert(*args: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline, "insert_new_quarantine", broken_quarantine_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_file(warehouse, path, settings)

    assert warehouse.count("transactions") == 5  # the rows inserted before the failure were rolled back
    assert warehouse.count("quarantine") == 0
    assert warehouse.count("ingest_batches") == 1
    leftovers = warehouse.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '_stage%'"
    )
    assert leftovers.empty


def test_batch_with_too_many_bad_rows_is_refused(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    rows = transactions(20)
    for row in rows[:3]:
        row["currency"] = "???"
    path = write_csv(tmp_path / "transactions.csv", rows)

    with pytest.raises(
        BatchRefusedError, match=r"3 of 20 rows invalid \(15.0% > CRM_INGEST_MAX_BAD_RATIO=5.0%\)"
    ):
        ingest_file(warehouse, path, settings)

    assert warehouse.count("transactions") == 0
    assert warehouse.count("quarantine") == 0
    relaxed = settings.model_copy(update={"ingest_max_bad_ratio": 0.2})
    assert ingest_file(warehouse, path, relaxed).rows_new == 17


def test_missing_required_column_refuses_the_file(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    rows = [{k: v for k, v in row.items() if k != "currency"} for row in transactions(3)]
    with pytest.raises(ContractError, match="transactions: missing column 'currency'"):
        ingest_file(warehouse, write_csv(tmp_path / "transactions.csv", rows), settings)
    assert warehouse.count("transactions") == 0


def test_non_utf8_bytes_quarantine_the_row_not_the_file(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "transactions.csv", transactions(30))
    text = path.read_bytes().replace(
        b"T7,C0,shop,2024-03-01T10:00:00Z,25.50,EUR,purchase,web",
        b"T7,C0,shop,2024-03-01T10:00:00Z,25.50,EUR,purchase,caf\xe9",
    )
    path.write_bytes(text)

    report = ingest_file(warehouse, path, settings)

    assert (report.rows_new, report.rows_rejected) == (29, 1)
    quarantine = table(warehouse, "quarantine")
    assert quarantine[["row_number", "column_name", "reason"]].values.tolist() == [
        [7, "channel", "not valid UTF-8 text"]
    ]
    assert "caf\\udce9" in quarantine["payload"].iloc[0]


def test_wrong_types_in_parquet_are_quarantined(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    frame = pd.DataFrame(transactions(30))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame.loc[2, "amount"] = "twelve"
    path = tmp_path / "transactions.parquet"
    frame.to_parquet(path)

    report = ingest_file(warehouse, path, settings)

    assert (report.rows_new, report.rows_rejected) == (29, 1)
    assert table(warehouse, "quarantine")["row_number"].tolist() == [3]


def test_source_option_fills_a_missing_source_column(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    rows = [{k: v for k, v in row.items() if k != "source"} for row in transactions(4)]
    ingest_file(
        warehouse, write_csv(tmp_path / "orders.csv", rows), settings, table="transactions", source="erp"
    )
    assert set(table(warehouse, "transactions")["source"]) == {"erp"}


def test_customer_file_name_gives_the_source(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    record = {
        "source_customer_id": "C1",
        "email": "a@b.io",
        "updated_at": "2024-01-01",
        "marketing_consent": "no",
    }
    ingest_file(warehouse, write_csv(tmp_path / "customers_crm.csv", [record]), settings)
    stored = table(warehouse, "customer_records")
    assert stored[["source", "source_customer_id"]].values.tolist() == [["crm", "C1"]]
    assert stored["marketing_consent"].tolist() == [False]


def test_ingest_from_a_sql_query(warehouse: Warehouse, settings: Settings, tmp_path: Path) -> None:
    source_db = tmp_path / "erp.sqlite"
    pd.DataFrame(transactions(12)).to_sql("sales", f"sqlite:///{source_db}", index=False)

    report = ingest_query(
        warehouse,
        f"sqlite:///{source_db}",
        "SELECT * FROM sales WHERE amount > 0",
        settings,
        table="transactions",
    )

    assert (report.rows_read, report.rows_new) == (12, 12)
    assert report.source_file.startswith("sql:")
    again = ingest_query(
        warehouse, f"sqlite:///{source_db}", "SELECT * FROM sales", settings, table="transactions"
    )
    assert again.rows_new == 0


def test_chunks_do_not_change_the_result(warehouse: Warehouse, settings: Settings, tmp_path: Path) -> None:
    rows = transactions(25) + transactions(5)  # the repeats land in another chunk
    rows[17] |= {"type": "sale"}
    small_chunks = settings.model_copy(update={"ingest_chunk_rows": 4})

    report = ingest_file(warehouse, write_csv(tmp_path / "transactions.csv", rows), small_chunks)

    assert (report.rows_read, report.rows_new, report.rows_duplicate, report.rows_rejected) == (30, 24, 5, 1)
    assert warehouse.fetch("SELECT * FROM quarantine")["row_number"].tolist() == [18]


def test_unknown_file_name_asks_for_a_table(warehouse: Warehouse, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell which table"):
        ingest_file(warehouse, write_csv(tmp_path / "export.csv", [GOOD_TRANSACTION]), settings)
