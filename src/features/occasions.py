"""Purchase histories in discrete time: for businesses whose customers can buy only at fixed occasions
(an annual event, a membership renewal, a yearly appeal), the summary the BG/BB model takes.

Time is cut into occasions of ``occasion_days`` counted back from the cutoff: occasion 0 ends on
``as_of``, occasion -1 the ``occasion_days`` before it, and occasions 1, 2, ... follow the cutoff. An
occasion with at least one purchase counts once. Per customer with a purchase on or before ``as_of``:

- ``n_periods``: occasions after the first purchase's, up to the cutoff's;
- ``frequency``: those with a purchase; ``recency``: the last of them, counted from the first (0 if none);
- ``holdout_purchases``: occasions 1..``holdout_occasions`` with a purchase (the label).

Customers whose first purchase falls in the cutoff's own occasion have ``n_periods`` 0: nothing is
known about them yet, and the BG/BB fit leaves them out.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from crm_analytics.features.purchases import purchases_as_of

OCCASION_COLUMNS = ("frequency", "recency", "n_periods")


def purchase_occasions(transactions: ir.Table, as_of: date, until: date, occasion_days: int) -> ir.Table:
    """(customer_id, occasion) for each occasion with a purchase on or before ``until``; the occasion
    is ``ceil((day - as_of) / occasion_days)``, so the cutoff's own occasion is 0."""
    if occasion_days < 1:
        raise ValueError(f"occasion_days: must be at least 1, got {occasion_days}")
    purchases = purchases_as_of(transactions, until)
    offset = purchases.day.delta(ibis.date(as_of), unit="day")
    occasion = (offset.cast("float64") / occasion_days).ceil().cast("int64")
    return purchases.select("customer_id", occasion=occasion).distinct()


def occasion_summary(
    transactions: ir.Table, as_of: date, occasion_days: int, holdout_occasions: int = 0
) -> ir.Table:
    """frequency, recency, n_periods and holdout_purchases per customer who had bought by ``as_of``
    (see the module docstring); ``holdout_occasions`` 0: no label."""
    if holdout_occasions < 0:
        raise ValueError(f"holdout_occasions: must be >= 0, got {holdout_occasions}")
    until = as_of + timedelta(days=occasion_days * holdout_occasions)
    occasions = purchase_occasions(transactions, as_of, until, occasion_days)
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
    transactions: ir.Table, as_of: date, occasion_days: int, holdout_occasions: int
) -> ir.Table:
    """(occasion, customers): how many of the customers who had bought before the cutoff's occasion
    (``n_periods`` >= 1, the cohort BG/BB is fitted on) buy at each occasion 1..``holdout_occasions``."""
    until = as_of + timedelta(days=occasion_days * holdout_occasions)
    occasions = purchase_occasions(transactions, as_of, until, occasion_days)
    cohort = occasions.filter(occasions.occasion < 0).select("customer_id").distinct()
    holdout = occasions.filter(occasions.occasion > 0).semi_join(cohort, "customer_id")
    return holdout.group_by("occasion").aggregate(customers=holdout.count()).order_by("occasion")
