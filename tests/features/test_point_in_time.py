"""Nothing after the cutoff leaks into features; labels come only from (cutoff, cutoff + horizon]."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.features.labels import holdout_targets
from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.settings import load_settings
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load
from tests.ingest.helpers import GOOD_TRANSACTION, write_csv

AS_OF = date(2025, 6, 30)


def features(warehouse: Warehouse, config: FeatureConfig) -> pd.DataFrame:
    return feature_table(warehouse.ibis, config).execute().set_index("customer_id")


def test_transactions_after_the_cutoff_move_no_feature(demo_folder: Path, tmp_path: Path) -> None:
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        load(warehouse, demo_folder)
        config = FeatureConfig(as_of=AS_OF).resolved(warehouse.ibis)
        before = features(warehouse, config)
        tx = warehouse.fetch("SELECT * FROM transactions WHERE timestamp < TIMESTAMP '2025-06-01'")
        someone, purchase = tx.loc[tx["type"] == "purchase", ["customer_id", "transaction_id"]].iloc[0]
        late = {
            "source": "booking",
            "timestamp": "2025-07-01T00:00:00",
            "currency": "EUR",
            "channel": "phone",
        }
        planted = [
            late | {"transaction_id": "LATE1", "customer_id": someone, "amount": "999", "type": "purchase"},
            late
            | {"transaction_id": "LATE2", "customer_id": someone, "amount": "0", "type": "cancellation"}
            | {"reference_id": purchase},
            late | {"transaction_id": "LATE3", "customer_id": someone, "amount": "-50", "type": "refund"},
            late | {"transaction_id": "LATE4", "customer_id": "NEWCOMER", "amount": "10", "type": "purchase"},
            late
            | {"transaction_id": "EDGE", "customer_id": someone, "amount": "5", "type": "purchase"}
            | {"timestamp": "2025-07-01T00:00:00.000001"},
        ]
        ingest_file(warehouse, write_csv(tmp_path / "transactions_late.csv", planted), load_settings())
        items = [{"source": "booking", "transaction_id": "LATE1", "line_no": "1", "item_id": "O99",
                  "category": "brand_new_extra", "quantity": "1", "unit_price": "999"}]  # fmt: skip
        ingest_file(warehouse, write_csv(tmp_path / "transaction_items_late.csv", items), load_settings())

        after = features(warehouse, config)
        assert (
            FeatureConfig(as_of=AS_OF).resolved(warehouse.ibis) == config
        )  # no new channel/category columns

    assert "NEWCOMER" not in after.index
    pd.testing.assert_frame_equal(before, after)


def test_the_cutoff_day_is_included(tmp_path: Path) -> None:
    rows = [
        GOOD_TRANSACTION | {"transaction_id": "A", "timestamp": "2025-06-30T23:59:59"},
        GOOD_TRANSACTION | {"transaction_id": "B", "timestamp": "2025-07-01T00:00:00"},
    ]
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        ingest_file(warehouse, write_csv(tmp_path / "transactions.csv", rows), load_settings())
        table = features(warehouse, FeatureConfig(as_of=AS_OF))
    assert table.loc["C1", "spend_total"] == 25.5


def test_labels_use_only_the_horizon(tmp_path: Path) -> None:
    def purchase(tid: str, customer: str, when: str, amount: str = "10") -> dict[str, str]:
        return GOOD_TRANSACTION | {
            "transaction_id": tid,
            "customer_id": customer,
            "timestamp": when,
            "amount": amount,
        }

    rows = [
        purchase("a0", "A", "2025-06-01"),
        purchase("a1", "A", "2025-06-30T12:00"),  # on the cutoff day: a feature, not a label
        purchase("a2", "A", "2025-07-01", "7"),
        purchase("a3", "A", "2025-07-01T18:00", "3"),  # same day: one purchase day, spend adds up
        purchase("b0", "B", "2025-05-01"),
        purchase("c0", "C", "2025-05-01"),
        purchase("c1", "C", "2025-07-30T23:00"),  # last day of a 30-day horizon: counts
        purchase("d0", "D", "2025-05-01"),
        purchase("d1", "D", "2025-07-31"),  # one day past the horizon: does not count
        purchase("e0", "E", "2025-05-01"),
        purchase("e1", "E", "2025-07-05"),
        GOOD_TRANSACTION
        | {
            "transaction_id": "e1x",
            "customer_id": "E",
            "timestamp": "2025-07-06",
            "type": "cancellation",
            "amount": "0",
            "reference_id": "e1",
        },
    ]
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        settings = load_settings().model_copy(update={"ingest_future_tolerance_hours": 24 * 365 * 5})
        ingest_file(warehouse, write_csv(tmp_path / "transactions.csv", rows), settings)
        table = features(warehouse, FeatureConfig(as_of=AS_OF, horizon_days=30))
        targets = holdout_targets(warehouse.ibis.table("transactions"), AS_OF, 30).execute()

    assert table["churned"].to_dict() == {"A": False, "B": True, "C": False, "D": True, "E": True}
    assert table.loc["A", "holdout_purchase_days"] == 1
    assert table.loc["A", "holdout_spend"] == 10.0
    assert table.loc["A", "frequency"] == 1  # the cutoff-day purchase is a feature
    assert sorted(targets["customer_id"]) == ["A", "C"]


def test_horizon_must_be_positive(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="horizon_days"):
        holdout_targets(warehouse.ibis.table("transactions"), AS_OF, 0)
