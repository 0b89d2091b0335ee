"""Assemble the feature table as of a cutoff: the BTYD summary, behavioural families and, optionally, labels.

``feature_table`` returns one Ibis expression over the backend's ``transactions`` and
``transaction_items`` tables, so the same definitions run on DuckDB, PostgreSQL or Spark.
Population statistics (which channels and extra categories become columns) are resolved from data known
at the cutoff and kept in the ``FeatureConfig``, so a model can rebuild the exact same columns later.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from crm_analytics.features import behaviour
from crm_analytics.features.labels import with_labels
from crm_analytics.features.purchases import known_at
from crm_analytics.features.rfm import TimeUnit, btyd_summary
from crm_analytics.profiles.links import customer_transactions

KEY_COLUMNS = ("customer_id", "as_of")


@dataclass(frozen=True)
class FeatureConfig:
    """How to build the table. ``None`` channels or categories mean: those seen up to the cutoff."""

    as_of: date
    horizon_days: int | None = None
    time_unit: TimeUnit = "days"
    channels: tuple[str, ...] | None = None
    extra_categories: tuple[str, ...] | None = None
    base_item_categories: tuple[str, ...] = ("room",)

    def resolved(self, con: BaseBackend) -> FeatureConfig:
        """This config with channels and extra categories fixed from the data known at the cutoff."""
        transactions = known_at(customer_transactions(con), self.as_of)
        channels = self.channels
        if channels is None:
            channels = behaviour.observed_values(transactions, "channel")
        categories = self.extra_categories
        if categories is None:
            items = con.table("transaction_items")
            known_items = items.semi_join(
                transactions,
                [items.source == transactions.source, items.transaction_id == transactions.transaction_id],
            )
            categories = behaviour.observed_values(known_items, "category", exclude=self.base_item_categories)
        return replace(self, channels=channels, extra_categories=categories)


def feature_table(con: BaseBackend, config: FeatureConfig) -> ir.Table:
    """One row per customer who bought on or before ``as_of``: keys, features and, with a horizon, labels."""
    config = (
        config
        if config.channels is not None and config.extra_categories is not None
        else config.resolved(con)
    )
    transactions = customer_transactions(con)
    items = con.table("transaction_items")
    as_of = config.as_of
    table = btyd_summary(transactions, as_of, config.time_unit)
    families = [
        behaviour.purchase_rhythm(transactions, as_of),
        behaviour.spend(transactions, as_of),
        behaviour.stays(transactions, as_of),
        behaviour.returns(transactions, as_of),
        behaviour.channel_mix(transactions, as_of, config.channels or ()),
        behaviour.extras_uptake(transactions, items, as_of, config.extra_categories or ()),
    ]
    for family in families:
        table = attach(table, family)
    table = table.mutate(as_of=ibis.date(as_of))
    if config.horizon_days is not None:
        table = with_labels(table, transactions, as_of, config.horizon_days)
    first = list(KEY_COLUMNS)
    return table.select(*first, *[c for c in table.columns if c not in first]).order_by("customer_id")


def attach(left: ir.Table, right: ir.Table) -> ir.Table:
    """Left-join a family's columns onto the table by customer_id."""
    right = right.rename(_customer_id="customer_id")
    return left.left_join(right, left.customer_id == right._customer_id).drop("_customer_id")
