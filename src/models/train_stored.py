"""Train CLV or churn on a stored, labelled feature build: what ``crm train`` and notebooks call.

Reads the build's horizon and time unit, the features, the daily repeat purchases of the horizon (for
the CLV tracking plot) and, for churn, the stored build one horizon earlier when it has the same
horizon and unit (churn is then validated on ``as_of`` by a model trained on that earlier build).
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from crm_analytics.features.purchases import customer_transactions
from crm_analytics.features.store import build_record, read_features
from crm_analytics.features.tracking import daily_repeat_purchases
from crm_analytics.ingest.warehouse import Warehouse
from crm_analytics.models.train import TrainResult, train_churn, train_clv
from crm_analytics.settings import Settings

MODELS = ("clv", "churn")


def train_from_store(
    settings: Settings, warehouse: Warehouse, model: str, as_of: date, seed: int = 0
) -> TrainResult:
    """Train ``model`` (clv or churn) on the stored build at ``as_of``; log and register it.

    A LookupError when there is no build at ``as_of``; a ValueError naming the problem when ``model`` is
    unknown or the build has no labels."""
    if model not in MODELS:
        raise ValueError(f"model: expected clv or churn, got {model!r}")
    build = build_record(warehouse, as_of)["config"]
    horizon_days, time_unit = build["horizon_days"], build["time_unit"]
    if horizon_days is None:
        raise ValueError(f"as_of: the build for {as_of} has no labels; rebuild it with --horizon-days")
    features = read_features(warehouse, as_of)
    if model == "clv":
        until = as_of + timedelta(days=horizon_days)
        daily = daily_repeat_purchases(customer_transactions(warehouse.ibis), as_of, until).execute()
        return train_clv(settings, features, horizon_days, time_unit, seed, daily=daily)
    earlier = _earlier_build(warehouse, as_of - timedelta(days=horizon_days), horizon_days, time_unit)
    return train_churn(settings, features, horizon_days, time_unit, seed, earlier=earlier)


def _earlier_build(
    warehouse: Warehouse, as_of: date, horizon_days: int, time_unit: str
) -> pd.DataFrame | None:
    """The stored labelled build at ``as_of`` with the same horizon and unit, or None."""
    try:
        build = build_record(warehouse, as_of)["config"]
    except LookupError:
        return None
    if (build["horizon_days"], build["time_unit"]) != (horizon_days, time_unit):
        return None
    return read_features(warehouse, as_of)
