"""Repeat purchases per day across the population: the actual line of a BTYD tracking plot.

Only customers whose first purchase lies on or before the cutoff count (the cohort a model was fitted
on); a repeat purchase is a purchase day after the customer's first, so the daily counts add up to
the calibration ``frequency`` total up to the cutoff and to ``holdout_purchase_days`` after it. The
result is an aggregate (day, count): no customer appears in it.
"""

from __future__ import annotations

from datetime import date

import ibis.expr.types as ir

from crm_analytics.features.purchases import purchases_as_of, purchases_between


def daily_repeat_purchases(transactions: ir.Table, as_of: date, until: date) -> ir.Table:
    """Repeat purchase days per calendar day in (first purchase, ``until``] for the cutoff's cohort."""
    calibration = purchases_as_of(transactions, as_of).select("customer_id", "day").distinct()
    first_days = calibration.group_by("customer_id").aggregate(first_day=calibration.day.min())
    holdout = purchases_between(transactions, as_of, until).select("customer_id", "day").distinct()
    days = calibration.union(holdout, distinct=True)
    repeat = days.join(first_days, "customer_id").filter(lambda t: t.day > t.first_day)
    return repeat.group_by("day").aggregate(repeat_purchases=repeat.count()).order_by("day")
