"""The BTYD summary equals lifetimes' summary_data_from_transaction_data, through our own pipeline."""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import summary_data_from_transaction_data

from crm_analytics.datasets.cdnow import load_cdnow_raw
from crm_analytics.features.purchases import purchases_as_of
from crm_analytics.features.rfm import btyd_summary
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load

CALIBRATION_END = date(1997, 9, 30)


def assert_matches_lifetimes(ours: pd.DataFrame, purchases: pd.DataFrame, as_of: date, per: int) -> None:
    expected = summary_data_from_transaction_data(
        purchases,
        "customer_id",
        "timestamp",
        "amount",
        observation_period_end=str(as_of),
        freq="D",
        freq_multiplier=per,
    )
    ours = ours.set_index("customer_id").loc[expected.index]
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[column].to_numpy(), expected[column].to_numpy(), err_msg=column)
    np.testing.assert_allclose(ours["monetary_value"], expected["monetary_value"], rtol=1e-9, atol=0)


@pytest.mark.parametrize("time_unit", ["days", "weeks"])
def test_cdnow_sample_equals_lifetimes(cdnow_sample: Warehouse, time_unit: str) -> None:
    transactions = cdnow_sample.ibis.table("transactions")
    ours = btyd_summary(transactions, CALIBRATION_END, time_unit).execute()
    purchases = transactions.select("customer_id", "timestamp", "amount").execute()
    assert len(ours) == 2_357
    assert_matches_lifetimes(ours, purchases, CALIBRATION_END, 7 if time_unit == "weeks" else 1)


@pytest.mark.slow
def test_cdnow_master_equals_lifetimes(tmp_path: Path) -> None:
    from crm_analytics.datasets.cdnow import write_cdnow

    write_cdnow("master", tmp_path / "raw")
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        transactions = load(warehouse, tmp_path / "raw").ibis.table("transactions")
        ours = btyd_summary(transactions, CALIBRATION_END).execute()
        purchases = transactions.select("customer_id", "timestamp", "amount").execute()
    assert len(ours) == 23_570
    assert_matches_lifetimes(ours, purchases, CALIBRATION_END, 1)


def test_demo_equals_lifetimes_on_uncancelled_purchases(demo: Warehouse) -> None:
    as_of = date(2025, 6, 30)
    transactions = demo.ibis.table("transactions")
    ours = btyd_summary(transactions, as_of).execute()
    purchases = purchases_as_of(transactions, as_of).select("customer_id", "timestamp", "amount").execute()
    assert (purchases.groupby(["customer_id", purchases["timestamp"].dt.date]).size() > 1).any(), (
        "no same-day merging"
    )
    assert_matches_lifetimes(ours, purchases, as_of, 1)


def test_reproduces_the_published_cdnow_summary(cdnow_sample: Warehouse) -> None:
    """lifetimes' cdnow_customers_summary.csv from raw CDNOW_sample: to 1997-09-30, weeks, 2 decimals."""
    published = pd.read_csv(
        str(resources.files("lifetimes.datasets").joinpath("cdnow_customers_summary.csv"))
    )
    sample_ids = load_cdnow_raw("sample").drop_duplicates("customer_id").set_index("customer_id")["sample_id"]
    ours = btyd_summary(cdnow_sample.ibis.table("transactions"), CALIBRATION_END, "weeks").execute()
    ours = ours.assign(ID=ours["customer_id"].map(sample_ids)).sort_values("ID").reset_index(drop=True)
    assert ours["ID"].tolist() == published["ID"].tolist()
    for column in ("frequency", "recency", "T"):
        assert ours[column].round(2).tolist() == published[column].tolist(), column


def test_unknown_time_unit_is_rejected(cdnow_sample: Warehouse) -> None:
    with pytest.raises(ValueError, match="time_unit: expected one of days, weeks"):
        btyd_summary(cdnow_sample.ibis.table("transactions"), CALIBRATION_END, "months")
