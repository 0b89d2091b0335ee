"""Transactions, line items and the offer log (with its truth) from the drawn bookings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_analytics.datasets.demo import catalogue
from crm_analytics.datasets.demo import offers as cat
from crm_analytics.datasets.demo.config import DemoConfig
from crm_analytics.datasets.demo.people import format_ids, id_width, pick, text, to_datetime
from crm_analytics.datasets.demo.stays import Bookings, booking_columns


def _line_items(bk: Bookings, extras: np.ndarray) -> tuple[np.ndarray, ...]:
    """(booking, item code, quantity, unit cents) per line, rooms first, then each offer in turn.

    Item codes index ``ROOM_TYPES`` followed by ``OFFERS``.
    """
    ctx = bk.ctx
    n = len(ctx.person)
    parts = [(np.arange(n), ctx.room, ctx.nights, bk.room_cents)]
    for o in range(len(catalogue.OFFERS)):
        rows = np.flatnonzero(extras[:, o])
        code = np.full(len(rows), len(catalogue.ROOM_TYPES) + o)
        parts.append((rows, code, cat.quantities(o, ctx, rows), catalogue.PRICE_CENTS[o, ctx.hotel[rows]]))
    return tuple(np.concatenate(x) for x in zip(*parts, strict=True))


def _follow_ups(
    rng: np.random.Generator, c: DemoConfig, bk: Bookings, amount: np.ndarray, last_s: int
) -> tuple[np.ndarray, ...]:
    """(booking, timestamp, cents) of the cancellations, then (the same) of the refunds."""
    cancelled = np.arange(bk.n_stays, len(bk.ts))
    room_left = last_s - bk.ts[cancelled]
    delay = (3_600 + rng.exponential(2 * 86_400, len(cancelled))).astype(np.int64)
    delay = np.where(delay > room_left, (room_left * rng.random(len(cancelled))).astype(np.int64), delay)
    deposit = np.where(rng.random(len(cancelled)) < 0.5, np.rint(0.2 * amount[cancelled]), 0).astype(np.int64)
    checkout = (bk.check_in[: bk.n_stays] + bk.ctx.nights[: bk.n_stays]) * 86_400
    refunded = np.flatnonzero((checkout <= last_s) & (rng.random(bk.n_stays) < c.refund_rate))
    room_after = np.minimum(14 * 86_400, last_s - checkout[refunded])
    refund_ts = checkout[refunded] + (rng.random(len(refunded)) * room_after).astype(np.int64)
    refund = np.maximum(np.rint(rng.uniform(0.1, 0.5, len(refunded)) * amount[refunded]), 1).astype(np.int64)
    return cancelled, bk.ts[cancelled] + delay, -deposit, refunded, refund_ts, -refund


def transactions_and_items(
    rng: np.random.Generator,
    c: DemoConfig,
    bk: Bookings,
    extras: np.ndarray,
    last_s: int,
    kept: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, pa.Array]:
    """Transactions and line items of the ``kept`` bookings; also each booking's row position and the
    transaction ids (both numbered over all bookings, so leaving some out changes no other row)."""
    ctx = bk.ctx
    n = len(ctx.person)
    item_booking, code, qty, unit = _line_items(bk, extras)
    amount = np.rint(np.bincount(item_booking, weights=qty * unit, minlength=n)).astype(np.int64)
    cancelled, cancel_ts, cancel_cents, refunded, refund_ts, refund_cents = _follow_ups(
        rng, c, bk, amount, last_s
    )

    booking = np.concatenate([np.arange(n), cancelled, refunded])
    kind = np.repeat(np.arange(3), [n, len(cancelled), len(refunded)])
    ts = np.concatenate([bk.ts, cancel_ts, refund_ts])
    cents = np.concatenate([amount, cancel_cents, refund_cents])
    order = np.argsort(ts, kind="stable")  # rows are already ordered by (kind, booking) within a time
    booking, kind, ts, cents = booking[order], kind[order], ts[order], cents[order]
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    purchase_pos = position[:n]
    txn_ids = format_ids("B", np.arange(1, len(order) + 1), max(9, len(str(len(order)))))
    rows = kept[booking]
    booking, kind, ts, cents = booking[rows], kind[rows], ts[rows], cents[rows]
    booked = booking_columns(c, bk, booking)
    transactions = pd.DataFrame(
        {
            "transaction_id": text(txn_ids.filter(pa.array(rows))),
            "customer_id": text(format_ids("G", bk.account[booking], bk.account_width)),
            "source": text(pick(("booking",), np.zeros(len(booking), dtype=np.int64))),
            "timestamp": to_datetime(np.datetime64(c.start, "s"), ts),
            "amount": cents / 100.0,
            "currency": text(pick([h.currency for h in catalogue.HOTELS], ctx.hotel[booking])),
            "type": text(pick(("purchase", "cancellation", "refund"), kind)),
            "channel": booked.pop("channel"),
            "reference_id": text(pc.take(txn_ids, pa.array(purchase_pos[booking], mask=kind == 0))),
            **booked,
        }
    )

    lines = np.flatnonzero(kept[item_booking])
    # within a booking the lines keep their order: room first
    order = lines[np.argsort(purchase_pos[item_booking[lines]], kind="stable")]
    pos, code, qty, unit = purchase_pos[item_booking[order]], code[order], qty[order], unit[order]
    starts = np.flatnonzero(code < len(catalogue.ROOM_TYPES))
    line_no = np.arange(len(pos)) - np.repeat(starts, np.diff(np.append(starts, len(pos)))) + 1
    item_names = [*catalogue.ROOM_TYPES, *(o.offer_id for o in catalogue.OFFERS)]
    item_categories = ["room"] * len(catalogue.ROOM_TYPES) + [o.category for o in catalogue.OFFERS]
    items = pd.DataFrame(
        {
            "source": text(pick(("booking",), np.zeros(len(pos), dtype=np.int64))),
            "transaction_id": text(pc.take(txn_ids, pa.array(pos))),
            "line_no": line_no,
            "item_id": text(pick(item_names, code)),
            "category": text(pick(item_categories, code)),
            "quantity": qty.astype(np.int64),
            "unit_price": unit / 100.0,
        }
    )
    return transactions, items, purchase_pos, txn_ids


def offer_log_and_truth(
    rng: np.random.Generator,
    c: DemoConfig,
    bk: Bookings,
    events: cat.OfferEvents,
    options: cat.OfferOptions,
    purchase_pos: np.ndarray,
    txn_ids: pa.Array,
    last_s: int,
    kept: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The offer log of the ``kept`` bookings, the logged offers' true acceptance probabilities and every
    option's truth.

    ``events`` are in time order; ``options`` belong to them. Event ids number all events.
    """
    shown = bk.ts[events.booking]
    responded = np.minimum(shown + 1 + rng.exponential(180.0, len(shown)).astype(np.int64), last_s)
    numbers = np.arange(1, len(shown) + 1)
    keep = kept[events.booking]
    width = max(9, len(str(len(shown))))
    events, shown, responded = events.take(np.flatnonzero(keep)), shown[keep], responded[keep]
    numbers = numbers[keep]
    options = options.take(np.flatnonzero(keep[options.event]))
    rows, offer = events.booking, events.offer
    start = np.datetime64(c.start, "s")
    event_ids = text(format_ids("E", numbers, width))
    offer_ids = text(pick([o.offer_id for o in catalogue.OFFERS], offer))
    log = pd.DataFrame(
        {
            "event_id": event_ids,
            "shown_at": to_datetime(start, shown),
            "customer_id": text(format_ids("G", bk.account[rows], bk.account_width)),
            "source": text(pick(("booking",), np.zeros(len(rows), dtype=np.int64))),
            "transaction_id": text(pc.take(txn_ids, pa.array(purchase_pos[rows]))),
            "offer_id": offer_ids,
            **booking_columns(c, bk, rows),
            "upgrade_available": bk.ctx.upgrade_available[rows],
            "propensity": events.propensity,
            "accepted": events.accepted,
            "responded_at": to_datetime(start, responded),
        }
    )
    truth = pd.DataFrame(
        {
            "event_id": event_ids,
            "person_id": text(format_ids("P", bk.ctx.person[rows] + 1, id_width(c.customers))),
            "offer_id": offer_ids,
            "p_true": events.p_true,
        }
    )
    option_truth = pd.DataFrame(
        {
            "event_id": text(format_ids("E", options.event + 1, width)),
            "offer_id": text(pick([o.offer_id for o in catalogue.OFFERS], options.offer)),
            "p_true": options.p_true,
            "quantity": options.quantity,
            "margin_eur": options.margin_eur,
        }
    )
    return log, truth, option_truth
