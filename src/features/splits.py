"""Calibration/holdout splits over time: one cutoff, or several (rolling origin) for backtests."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from crm_analytics.features.build import FeatureConfig, feature_table


def rolling_origins(last_data_day: date, horizon_days: int, step_days: int, count: int) -> list[date]:
    """``count`` cutoffs, ``step_days`` apart, the latest leaving a full horizon before the data ends."""
    if min(horizon_days, step_days, count) <= 0:
        raise ValueError("horizon_days, step_days and count must be positive")
    latest = last_data_day - timedelta(days=horizon_days)
    return sorted(latest - timedelta(days=step_days * k) for k in range(count))


def backtest_table(con: BaseBackend, config: FeatureConfig, cutoffs: list[date]) -> ir.Table:
    """Feature tables with labels for each cutoff, stacked (one row per customer and cutoff).

    Every cutoff uses the same channel and category columns: those of ``config`` resolved at the
    earliest cutoff, so the stacked table has one schema and later data adds no columns to earlier rows.
    """
    if config.horizon_days is None:
        raise ValueError("horizon_days: a backtest needs labels, give a horizon")
    if not cutoffs:
        raise ValueError("cutoffs: give at least one")
    resolved = replace(config, as_of=min(cutoffs)).resolved(con)
    tables = [feature_table(con, replace(resolved, as_of=cutoff)) for cutoff in sorted(cutoffs)]
    stacked = tables[0]
    for table in tables[1:]:
        stacked = stacked.union(table)
    return stacked.order_by(["as_of", "customer_id"])
