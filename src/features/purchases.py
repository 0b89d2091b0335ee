"""The purchases a customer had made as of a cutoff: the one input every purchase-history feature shares.

Point-in-time rules, applied here once so no feature can break them:

- ``as_of`` is a date and includes that whole day: rows with ``timestamp < as_of + 1 day`` are known.
- A purchase counts when it is known at the cutoff and was not cancelled by then: a cancellation
  (``type = 'cancellation'`` with ``reference_id`` = the purchase) dated after the cutoff does not
  undo it, because on the cutoff day nobody knew.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir


def known_at(transactions: ir.Table, as_of: date) -> ir.Table:
    """Every transaction (any type) recorded on or before ``as_of``."""
    return transactions.filter(transactions.timestamp < ibis.timestamp(as_of + timedelta(days=1)))


def purchases_as_of(transactions: ir.Table, as_of: date) -> ir.Table:
    """Purchases known at ``as_of`` and not cancelled by then, with their ``day``."""
    known = known_at(transactions, as_of)
    cancelled = known.filter(known.type == "cancellation").select(cancelled_id=known.reference_id)
    purchases = known.filter(known.type == "purchase")
    purchases = purchases.anti_join(cancelled, purchases.transaction_id == cancelled.cancelled_id)
    return purchases.mutate(day=purchases.timestamp.date())


def purchases_between(transactions: ir.Table, after: date, until: date) -> ir.Table:
    """Purchases in ``(after, until]`` (whole days) not cancelled by ``until``: the holdout window."""
    purchases = purchases_as_of(transactions, until)
    return purchases.filter(purchases.day > ibis.date(after))
