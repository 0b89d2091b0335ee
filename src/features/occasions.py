"""Purchase histories in discrete time: for businesses whose customers can buy only at fixed occasions
(an annual event, a membership renewal, a yearly appeal), the summary the BG/BB model takes.

Time is cut into occasions of ``occasion_months`` calendar months counted back from the cutoff:
occasion 0 ends on ``as_of``, occasion -1 the ``occasion_months`` before it, and occasions 1, 2, ...
follow it (``as_of + k * occasion_months`` months ends occasion k, so an annual event keeps its date
across leap years). An occasion with at least one purchase counts once. Per customer with a purchase on
or before ``as_of``:

- ``n_periods``: occasions after the first purchase's, up to the cutoff's;
- ``frequency``: those with a purchase; ``recency``: the last of them, counted from the first (0 if none);
- ``holdout_purchases``: occasions 1..``holdout_occasions`` with a purchase (the label).

The calibration occasions see only what was known at ``as_of`` (a later cancellation does not undo a
purchase, as for every feature: ``features.purchases``). Customers whose first purchase falls in the
cutoff's own occasion have ``n_periods`` 0: nothing is known about them yet, and the BG/BB fit leaves
them out.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir
import pandas as pd

from crm_analytics.features.purchases import purchases_as_of, purchases_between

OCCASION_COLUMNS = ("frequency", "recency", "n_periods")


def occasion_end(as_of: date, occasion_months: int, occasions: int) -> date:
    """The last day of occasion ``occasions`` (0: ``as_of``), month ends clamped (31 Jan + 1 month:
    28 or 29 Feb)."""
    return (pd.Timestamp(as_of) + pd.DateOffset(months=occasion_months * occasions)).date()


def whole_occasions(as_of: date, until: date, occasion_months: int) -> int:
    """How many occasions after ``as_of`` have ended by ``until``."""
    count = 0
    while occasion_end(as_of, occasion_months, count + 1) <= until:
        count += 1
    return count


def _occasion(days: ir.Table, as_of: date, occasion_months: int) -> ir.IntegerValue:
    """ceil(months from ``as_of`` to the day / ``occasion_months``), a month counting once its day of
    the month has passed ``as_of``'s."""
    cutoff = ibis.date(as_of)
    months = (days.day.year() - cutoff.year()) * 12 + (days.day.month() - cutoff.month())
    months = months + ibis.ifelse(days.day.day() > cutoff.day(), 1, 0)
    return (months.cast("float64") / occasion_months).ceil().cast("int64")


def purchase_occasions(transactions: ir.Table, as_of: date, until: date, occasion_months: int) -> ir.Table:
    """(customer_id, occasion) for each occasion with a purchase: up to ``as_of`` as known then, and in
    (``as_of``, ``until``] as known at ``until``; the cutoff's own occasion is 0."""
    if occasion_months < 1:
        raise ValueError(f"occasion_months: must be at least 1, got {occasion_months}")
    known = purchases_as_of(transactions, as_of).select("customer_id", "day")
    later = purchases_between(transactions, as_of, until).select("customer_id", "day")
    days = known.union(later)
    return days.select("customer_id", occasion=_occasion(days, as_of, occasion_months)).distinct()


def occasion_summary(
    transactions: ir.Table, as_of: date, occasion_months: int, holdout_occasions: int = 0
) -> ir.Table:
    """frequency, recency, n_periods and holdout_purchases per customer who had bought by ``as_of``
    (see the module docstring); ``holdout_occasions`` 0: no label."""
    if holdout_occasions < 0:
        raise ValueError(f"holdout_occasions: must be >= 0, got {holdout_occasions}")
    until = occasion_end(as_of, occasion_months, holdout_occasions)
    occasions = purchase_occasions(transactions, as_of, until, occasion_months)
    calibration = occasions.filter(occasions.occasion <= 0)
    first = calibration.group_by("customer_id").aggregate(
        first=calibration.occasion.min(),
        last=calibration.occasion.max(),
        occasions=calibration.count(),
    )
    holdout = occasions.filter(occasions.occasion > 0)
    holdout_counts = holdout.group_by("customer_id").aggregate(holdout_purchases=holdout.count())
    joined = first.left_join(holdout_counts, "customer_id")
    return joined.select(
        "customer_id",
        frequency=(joined.occasions - 1).cast("int64"),
        recency=(joined["last"] - joined["first"]).cast("int64"),
        n_periods=(-joined["first"]).cast("int64"),
        holdout_purchases=joined.holdout_purchases.fill_null(0).cast("int64"),
    ).order_by("customer_id")


def occasion_purchasers(
    transactions: ir.Table, as_of: date, occasion_months: int, holdout_occasions: int
) -> ir.Table:
    """(occasion, customers): how many of the customers who had bought before the cutoff's occasion
    (``n_periods`` >= 1, the cohort BG/BB is fitted on) buy at each occasion 1..``holdout_occasions``."""
    until = occasion_end(as_of, occasion_months, holdout_occasions)
    occasions = purchase_occasions(transactions, as_of, until, occasion_months)
    cohort = occasions.filter(occasions.occasion < 0).select("customer_id").distinct()
    holdout = occasions.filter(occasions.occasion > 0).semi_join(cohort, "customer_id")
    return holdout.group_by("occasion").aggregate(customers=holdout.count()).order_by("occasion")
