"""The real CDNOW data from the lifetimes wheel, converted and ingested."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_analytics.datasets.cdnow import cdnow_transactions, load_cdnow_raw, write_cdnow
from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse


@pytest.mark.parametrize(
    ("variant", "rows", "customers"), [("sample", 6_919, 2_357), ("master", 69_659, 23_570)]
)
def test_cdnow_conversion_keeps_every_row(variant: str, rows: int, customers: int) -> None:
    converted = cdnow_transactions(variant)
    assert len(converted) == rows
    assert converted["customer_id"].nunique() == customers
    assert converted["transaction_id"].is_unique
    assert str(converted["timestamp"].min().date()) == "1997-01-01"
    assert str(converted["timestamp"].max().date()) == "1998-06-30"
    assert converted["amount"].sum() == pytest.approx(load_cdnow_raw(variant)["amount"].sum())


def test_same_day_repeat_rows_get_distinct_stable_ids() -> None:
    first, second = cdnow_transactions("sample"), cdnow_transactions("sample")
    assert first["transaction_id"].tolist() == second["transaction_id"].tolist()
    assert first["transaction_id"].str.endswith("-2").sum() > 0  # CDNOW_sample has repeated identical lines


def test_cdnow_sample_ingests_completely_once(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    transactions_csv, items_csv = write_cdnow("sample", tmp_path / "cdnow")

    first = ingest_file(warehouse, transactions_csv, settings)
    second = ingest_file(warehouse, transactions_csv, settings)
    items = ingest_file(warehouse, items_csv, settings)

    assert (first.rows_read, first.rows_new, first.rows_rejected) == (6_919, 6_919, 0)
    assert (second.rows_new, second.rows_duplicate) == (0, 6_919)
    assert items.rows_new == 6_919
    zero_dollar = warehouse.fetch("SELECT COUNT(*) AS n FROM transactions WHERE amount = 0")["n"].iloc[0]
    assert zero_dollar == 8  # $0 purchases are kept (see README: CDNOW's $0 rows)
