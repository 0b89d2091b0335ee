"""The buy-till-you-die summary (frequency, recency, T, monetary_value) as an Ibis expression.

Same definitions as ``lifetimes.utils.summary_data_from_transaction_data`` with ``freq="D"``:
purchases on one day are merged into one (their amounts summed); ``frequency`` is the number of
purchase days after the first; ``recency`` the time from the first to the last purchase day; ``T`` the
time from the first purchase day to ``as_of``; ``monetary_value`` the mean spend of the repeat purchase
days (0 without repeats). Time is in days, or in weeks as days / 7 (``time_unit="weeks"``).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import ibis
import ibis.expr.types as ir

from crm_analytics.features.catalog import declare
from crm_analytics.features.purchases import purchases_as_of

TimeUnit = Literal["days", "weeks"]
DAYS_PER_UNIT: dict[str, int] = {"days": 1, "weeks": 7}
PURCHASE = ("transactions.timestamp", "transactions.type", "transactions.reference_id")

BTYD_COLUMNS = declare(
    "btyd",
    ("frequency", "purchase days after the first (same-day purchases merged)", "float64", PURCHASE),
    ("recency", "time from the first to the last purchase day, in the time unit", "float64", PURCHASE),
    ("T", "time from the first purchase day to the cutoff (tenure), in the time unit", "float64", PURCHASE),
    (
        "monetary_value",
        "mean spend of the repeat purchase days (0 without repeats)",
        "float64",
        (*PURCHASE, "transactions.amount"),
    ),
)


def purchase_days(transactions: ir.Table, as_of: date) -> ir.Table:
    """One row per customer and purchase day: the day's spend and number of purchases."""
    purchases = purchases_as_of(transactions, as_of)
    return purchases.group_by(["customer_id", "day"]).aggregate(
        spend=purchases.amount.sum(), purchases=purchases.count()
    )


def btyd_summary(transactions: ir.Table, as_of: date, time_unit: TimeUnit = "days") -> ir.Table:
    """frequency, recency, T, monetary_value per customer with a purchase on or before ``as_of``."""
    if time_unit not in DAYS_PER_UNIT:
        raise ValueError(f"time_unit: expected one of {', '.join(DAYS_PER_UNIT)}, got {time_unit!r}")
    days = purchase_days(transactions, as_of)
    per_customer = days.group_by("customer_id").aggregate(
        first_day=days.day.min(),
        last_day=days.day.max(),
        purchase_days=days.count(),
        total_spend=days.spend.sum(),
        first_day_spend=days.spend.argmin(days.day),
    )
    unit = DAYS_PER_UNIT[time_unit]
    frequency = per_customer.purchase_days - 1
    repeat_spend = per_customer.total_spend - per_customer.first_day_spend
    return per_customer.select(
        "customer_id",
        frequency=frequency.cast("float64"),
        recency=per_customer.last_day.delta(per_customer.first_day, unit="day").cast("float64") / unit,
        T=ibis.date(as_of).delta(per_customer.first_day, unit="day").cast("float64") / unit,
        monetary_value=ibis.ifelse(frequency > 0, repeat_spend / frequency.cast("float64"), 0.0),
    )
