"""Targets from the horizon after a cutoff: what the models learn to predict.

Labels use only purchases in ``(as_of, as_of + horizon_days]``, never anything at or before the cutoff,
so a feature table with labels can be used for training without leakage in either direction.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis.expr.types as ir

from crm_analytics.features.purchases import purchases_between


def holdout_targets(transactions: ir.Table, as_of: date, horizon_days: int) -> ir.Table:
    """Per customer with a purchase in the horizon: purchase days and spend in it."""
    if horizon_days <= 0:
        raise ValueError(f"horizon_days: must be positive, got {horizon_days}")
    window = purchases_between(transactions, as_of, as_of + timedelta(days=horizon_days))
    return window.group_by("customer_id").aggregate(
        holdout_purchase_days=window.day.nunique(), holdout_spend=window.amount.sum()
    )


def with_labels(features: ir.Table, transactions: ir.Table, as_of: date, horizon_days: int) -> ir.Table:
    """Add holdout_purchase_days, holdout_spend and churned (no purchase in the horizon) to features."""
    targets = holdout_targets(transactions, as_of, horizon_days)
    joined = features.left_join(targets, "customer_id").drop("customer_id_right")
    purchase_days = joined.holdout_purchase_days.fill_null(0)
    return joined.mutate(
        holdout_purchase_days=purchase_days,
        holdout_spend=joined.holdout_spend.fill_null(0.0),
        churned=purchase_days == 0,
    )
