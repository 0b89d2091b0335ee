"""Rolling-origin backtests: several cutoffs, each with a full horizon of labels."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.features.splits import backtest_table, rolling_origins
from crm_analytics.warehouse import Warehouse


def test_rolling_origins_leave_a_full_horizon() -> None:
    cutoffs = rolling_origins(date(1998, 6, 30), horizon_days=91, step_days=91, count=3)
    assert cutoffs == [date(1997, 9, 30), date(1997, 12, 30), date(1998, 3, 31)]


def test_rolling_origins_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        rolling_origins(date(1998, 6, 30), horizon_days=0, step_days=7, count=2)


def test_backtest_stacks_one_table_per_cutoff(cdnow_sample: Warehouse) -> None:
    cutoffs = rolling_origins(date(1998, 6, 30), horizon_days=91, step_days=91, count=3)
    config = FeatureConfig(as_of=cutoffs[0], horizon_days=91)

    stacked = backtest_table(cdnow_sample.ibis, config, cutoffs).execute()

    assert sorted(stacked["as_of"].dt.date.unique()) == cutoffs
    last = stacked[stacked["as_of"].dt.date == cutoffs[-1]].reset_index(drop=True)
    same_columns = FeatureConfig(
        as_of=cutoffs[-1], horizon_days=91, channels=("web",), extra_categories=("music",)
    )
    alone = feature_table(cdnow_sample.ibis, same_columns).execute()
    pd.testing.assert_frame_equal(last.drop(columns="as_of"), alone.drop(columns="as_of"))
    # customers who had not bought yet at a cutoff are absent from that cutoff's rows
    assert stacked.groupby("as_of").size().is_monotonic_increasing


def test_backtest_needs_a_horizon(cdnow_sample: Warehouse) -> None:
    with pytest.raises(ValueError, match="horizon_days"):
        backtest_table(cdnow_sample.ibis, FeatureConfig(as_of=date(1997, 9, 30)), [date(1997, 9, 30)])
