"""Behavioural features beyond RFM, one small function per family, each an Ibis expression.

Every function takes the warehouse tables and a cutoff and returns one row per customer with a purchase
on or before the cutoff (``customer_id`` plus its declared columns). Undefined values stay NULL (for
example the spread of gaps for a customer with one repeat purchase): models treat them as missing.
"""

from __future__ import annotations

import math
import re
from datetime import date

import ibis
import ibis.expr.types as ir

from crm_analytics.features.catalog import declare
from crm_analytics.features.purchases import known_at, purchases_as_of
from crm_analytics.features.rfm import PURCHASE, purchase_days

EPOCH = ibis.date(1970, 1, 1)


def indicator(condition: ir.BooleanValue) -> ir.FloatingValue:
    """1.0 where the condition holds, else 0.0.

    Portable on purpose: PostgreSQL cannot cast a boolean to a float, and Spark reads a 1.0 literal as a
    DECIMAL(2,1), whose average it rounds; an integer IF cast to DOUBLE is exact everywhere.
    """
    return ibis.ifelse(condition, 1, 0).cast("float64")


RHYTHM_COLUMNS = declare(
    "rhythm",
    ("days_since_last", "days from the last purchase day to the cutoff", "float64", PURCHASE),
    (
        "gap_mean_days",
        "mean days between consecutive purchase days (NULL without repeats)",
        "float64",
        PURCHASE,
    ),
    ("gap_std_days", "sample standard deviation of those gaps (NULL below two gaps)", "float64", PURCHASE),
    (
        "overdue_ratio",
        "days since the last purchase divided by the customer's own mean gap (NULL without repeats)",
        "float64",
        PURCHASE,
    ),
    (
        "seasonality_strength",
        "how concentrated purchase days are in the calendar year: 0 spread evenly, 1 always the same date "
        "(length of the mean day-of-year vector; NULL with one purchase day)",
        "float64",
        PURCHASE,
    ),
)


def purchase_rhythm(transactions: ir.Table, as_of: date) -> ir.Table:
    """Time since the last purchase, gaps between purchase days and calendar concentration (tenure is T)."""
    days = purchase_days(transactions, as_of)
    order = ibis.window(group_by="customer_id", order_by="day")
    angle = (days.day.day_of_year().cast("float64") - 1) * (2 * math.pi / 365.25)
    days = days.mutate(
        gap=days.day.delta(days.day.lag().over(order), unit="day").cast("float64"), angle=angle
    )
    per_customer = days.group_by("customer_id").aggregate(
        last_day=days.day.max(),
        n_days=days.count(),
        gap_mean_days=days.gap.mean(),
        gap_std_days=days.gap.std(how="sample"),
        mean_cos=days.angle.cos().mean(),
        mean_sin=days.angle.sin().mean(),
    )
    cutoff = ibis.date(as_of)
    since_last = cutoff.delta(per_customer.last_day, unit="day").cast("float64")
    resultant = (per_customer.mean_cos**2 + per_customer.mean_sin**2).sqrt()
    return per_customer.select(
        "customer_id",
        days_since_last=since_last,
        gap_mean_days=per_customer.gap_mean_days,
        gap_std_days=per_customer.gap_std_days,
        overdue_ratio=since_last / per_customer.gap_mean_days.nullif(0),
        seasonality_strength=ibis.ifelse(per_customer.n_days > 1, resultant, ibis.null("float64")),
    )


SPEND_COLUMNS = declare(
    "spend",
    ("spend_total", "total spend of purchases not cancelled", "float64", (*PURCHASE, "transactions.amount")),
    (
        "spend_trend",
        "correlation of purchase-day spend with time: -1 falling, +1 rising (NULL below three purchase days)",
        "float64",
        (*PURCHASE, "transactions.amount"),
    ),
)


def spend(transactions: ir.Table, as_of: date) -> ir.Table:
    """Total spend and its direction over time."""
    days = purchase_days(transactions, as_of)
    elapsed = days.day.delta(EPOCH, unit="day").cast("float64")
    per_customer = days.group_by("customer_id").aggregate(
        spend_total=days.spend.sum(),
        correlation=days.spend.corr(elapsed, how="pop"),
        n_days=days.count(),
    )
    return per_customer.select(
        "customer_id",
        spend_total=per_customer.spend_total,
        spend_trend=ibis.ifelse(per_customer.n_days >= 3, per_customer.correlation, ibis.null("float64")),
    )


BOOKING = ("transactions.check_in", "transactions.nights", "transactions.guests", "transactions.purpose")
STAY_COLUMNS = declare(
    "stay",
    (
        "lead_time_days_mean",
        "mean days from booking to check-in (NULL where not a booking)",
        "float64",
        BOOKING,
    ),
    ("nights_mean", "mean nights per stay", "float64", BOOKING),
    ("guests_mean", "mean party size", "float64", BOOKING),
    (
        "business_share",
        "share of stays whose purpose is business (of those with a purpose)",
        "float64",
        BOOKING,
    ),
)


def stays(transactions: ir.Table, as_of: date) -> ir.Table:
    """Booking context: lead time, stay length, party size, business share."""
    p = purchases_as_of(transactions, as_of)
    lead_time = p.check_in.date().delta(p.day, unit="day").cast("float64")
    return p.group_by("customer_id").aggregate(
        lead_time_days_mean=lead_time.mean(),
        nights_mean=p.nights.cast("float64").mean(),
        guests_mean=p.guests.cast("float64").mean(),
        business_share=indicator(p.purpose == "business").mean(),
    )


RETURNS_COLUMNS = declare(
    "returns",
    (
        "cancellation_rate",
        "cancellations per purchase made (cancelled purchases included in the denominator)",
        "float64",
        ("transactions.type",),
    ),
    ("refund_rate", "refunds per purchase made", "float64", ("transactions.type",)),
)


def returns(transactions: ir.Table, as_of: date) -> ir.Table:
    """How often a customer cancels or is refunded."""
    known = known_at(transactions, as_of)
    per_customer = known.group_by("customer_id").aggregate(
        purchases=indicator(known.type == "purchase").sum(),
        cancellations=indicator(known.type == "cancellation").sum(),
        refunds=indicator(known.type == "refund").sum(),
    )
    made = per_customer.purchases.nullif(0)
    return per_customer.select(
        "customer_id",
        cancellation_rate=per_customer.cancellations / made,
        refund_rate=per_customer.refunds / made,
    )


declare(
    "mix",
    (
        "share_channel_<channel>",
        "share of purchases made through each channel",
        "float64",
        ("transactions.channel",),
    ),
    (
        "extras_rate_<category>",
        "share of purchases with at least one line item of each extra category (categories other than the "
        "base ones, e.g. breakfast, spa)",
        "float64",
        ("transaction_items.category",),
    ),
)


def column_suffix(value: str) -> str:
    """A value as a column-name suffix: lower case, other characters as underscores."""
    return re.sub(r"[^0-9a-z]+", "_", value.lower()).strip("_") or "blank"


def channel_mix(transactions: ir.Table, as_of: date, channels: tuple[str, ...]) -> ir.Table:
    """Share of purchases through each of the given channels."""
    p = purchases_as_of(transactions, as_of)
    shares = {f"share_channel_{column_suffix(c)}": indicator(p.channel == c).mean() for c in channels}
    return p.group_by("customer_id").aggregate(n_purchases=p.count(), **shares).drop("n_purchases")


def extras_uptake(
    transactions: ir.Table, items: ir.Table, as_of: date, categories: tuple[str, ...]
) -> ir.Table:
    """Share of purchases that included each extra category."""
    p = purchases_as_of(transactions, as_of).select("source", "transaction_id", "customer_id")
    flags = {f"has_{column_suffix(c)}": indicator(items.category == c).max() for c in categories}
    per_purchase = items.group_by(["source", "transaction_id"]).aggregate(**flags)
    joined = p.left_join(per_purchase, ["source", "transaction_id"])
    rates = {
        f"extras_rate_{column_suffix(c)}": joined[f"has_{column_suffix(c)}"].fill_null(0.0).mean()
        for c in categories
    }
    return joined.group_by("customer_id").aggregate(n_purchases=joined.count(), **rates).drop("n_purchases")


def observed_values(table: ir.Table, column: str, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The distinct non-null values of a column, sorted: a population statistic fixed at training time."""
    values = table.select(value=table[column]).distinct().execute()["value"].dropna()
    return tuple(sorted(str(v) for v in values if str(v) not in exclude))
