"""Synthetic hotel-chain demo dataset, deterministic given a seed.

Generative process
------------------
Guests (persons) ``i = 1..N`` make a first booking at a time uniform over
``[start, start + first_stay_span_days)``. Their later stays follow a BG/NBD process in days:
``lambda_i ~ Gamma(shape=r, rate=alpha)``, ``p_i ~ Beta(a, b)``; while alive, inter-booking times are
``Exponential(lambda_i)``; after each repeat stay the guest drops out with probability ``p_i`` (as in
BG/NBD and ``lifetimes.BetaGeoFitter``, the first stay itself never ends the relationship). Events after
``end`` are cut. The defaults r=0.9, alpha=28, a=0.8, b=5 (about one booking a month while alive, mean
dropout 0.14) give about 9.0 stays and 10.2 transaction rows (purchases, cancellations, refunds) per
guest: 1M guests give 10.2M transactions.

Each event is a *booking*; its timestamp is the booking time and the guest checks in ``lead_time`` days
later (possibly after ``end``). A booking has a hotel (12 hotels H01..H12: the guest's favourite or a
popularity-weighted one; H01 London bills in GBP, the others in EUR), a purpose (business with a
per-guest propensity, else leisure), a channel, a party size, a room type (allergic guests prefer
hypoallergenic rooms) and a number of nights. Room revenue follows Gamma-Gamma:
``nu_i ~ Gamma(shape=q, rate=gamma)`` and each stay's room revenue ``z ~ Gamma(shape=p, rate=nu_i)`` EUR
(defaults p=6, q=4, gamma=150: 300 EUR on average; 0.86 GBP per EUR at H01). The nights are ``z`` over
a nightly rate that depends on purpose, room type and hotel, so business guests stay shorter.

Extras (breakfast, spa, late checkout, parking, airport transfer, upgrades, champagne, early check-in,
dinner: see ``demo_offers.OFFERS``) are bought with probability ``sigmoid(u - 1.5)``, where the utility
``u`` is the guest's latent preference for the category (one standard-normal logit per category and
guest) + category and offer intercepts + effects of purpose, log(nights) and party size + an allergy
effect (carpeted upgrades -3, the hypoallergenic room +2). Only eligible extras are bought: the hotel has
the facility (spa, parking, airport), room type and minimum nights fit, an upgrade is available (drawn
per booking) and at most one upgrade is taken. The amount is room revenue plus extras, in cents; the line
items are the room (item_id = room type, quantity = nights, unit price = revenue / nights rounded to
cents, which makes the items sum exactly to the amount) and each extra (item_id = offer id).

Besides the BG/NBD stays, ``cancel_rate`` of all bookings are extra bookings within 30 days of one of
the guest's stays, cancelled hours to days later (a ``cancellation`` row with ``reference_id``, amount 0
or minus a 20% deposit); ``refund_rate`` of stays get a partial ``refund`` (negative amount) within two
weeks of check-out.

Offer log: on ``offer_log_rate`` of bookings a randomised policy shows one offer drawn from the eligible
ones (rules above, not already booked, and no carpeted upgrade for guests whose CRM record lists an
allergy) with probability proportional to ``exp(popularity)``, logged as ``propensity``. It is accepted
with probability ``p_true = sigmoid(u)`` (the utility above without the unprompted-purchase shift);
accepted offers become line items of the booking. The catalogue (``offers``) gives each offer's price and
margin in EUR per ``unit``: per stay, night, guest or guest-night (the line item's quantity).

Offer truth, for evaluating offer policies offline against an oracle: ``truth/offer_acceptance`` has the
``p_true`` of each logged offer; ``truth/offer_options`` has one row per logged event (``event_id``) and
offer the booking could take under the *true* facts: the rules above with the guest's true allergy (not
the CRM's), not already booked, no second upgrade. Each row carries ``p_true`` (sigmoid of the true
utility of that offer in that booking), ``quantity`` (by the unit: 1, nights, party size or both) and
``margin_eur`` (catalogue margin x quantity, in EUR whatever the hotel's currency). These rows alone give
the oracle (per event the option maximising ``p_true * margin_eur``, or ``p_true``) and the true value of
any policy (sum over options of its choice probability x ``p_true * margin_eur``); join ``offer_log`` on
``event_id`` to restrict to a later, held-out period and to compare with off-policy estimates from
``propensity`` and ``accepted``. The logged offer is among its event's options, with the same ``p_true``,
unless it was a carpeted upgrade shown to an allergic guest whose allergy the CRM lacks (about 0.05% of
events at the defaults): the true facts forbid it, so it has no row there and the event keeps only its
other options (in principle none).

Identities and planted problems: every guest has a booking-system account (``G...``); about 3% also
have a second one (an OTA relay profile with another e-mail and often no phone) that carries 30-70% of
their bookings. About 70% have a CRM record (``C...``, loyalty id ``L...``, which 60% of them also gave
the booking system); every guest has a billing account (``A...``). About 10% moved: billing holds the
new address and the latest ``updated_at``, CRM and booking the old one. About 5% have a name typo
(dropped or swapped letter) in one source; 15% of booking records lack an e-mail; billing stores phones
without spaces; marketing consent differs between two sources for about 18% of guests. Allergies (5% of
guests), accessibility needs and room preferences are recorded in the CRM only. Account numbers are
shuffled, so ids carry no person information. Ground truth (latent parameters, the identity map and
the offer truth) is returned under ``truth`` and written to ``truth/`` for evaluation only.

Timestamps are naive UTC. Fitting lifetimes' models on the stays of each person recovers the parameters
(see ``tests/ingest/test_demo_generator.py``); at daily resolution lifetimes merges same-day bookings
(about 2.3% of stays), which makes alpha come out 6-8% high.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from crm_analytics.ingest.datasets import demo_offers as cat
from crm_analytics.ingest.datasets.demo_people import (
    Accounts,
    build_customers,
    draw_accounts,
    format_ids,
    id_width,
    pick,
    text,
    to_datetime,
)

CHANNELS: tuple[str, ...] = ("direct", "web", "ota", "phone", "corporate")
_CHANNEL_P = {False: [0.2, 0.35, 0.35, 0.1, 0.0], True: [0.2, 0.25, 0.15, 0.05, 0.35]}  # by business
_ROOM_P = {False: [0.55, 0.27, 0.08, 0.10], True: [0.35, 0.12, 0.05, 0.48]}  # by allergic
_PARTY_P = {False: [0.22, 0.55, 0.13, 0.10], True: [0.88, 0.12, 0.0, 0.0]}  # sizes 1..4, by business
_NIGHTLY_EUR = {False: 105.0, True: 150.0}  # by business
_ROOM_RATE = np.array([1.0, 1.35, 2.3, 1.15])
_LEAD_DAYS = {False: 35.0, True: 7.0}  # mean lead time, by business
DATE_COLUMNS = frozenset({"check_in", "birth_date"})


@dataclass(frozen=True)
class DemoConfig:
    """Size, seed, window and the true parameters of the demo data (rates and times in days)."""

    customers: int = 5_000
    seed: int = 42
    start: date = date(2023, 1, 1)
    end: date = date(2025, 12, 31)  # inclusive; nothing is dated after it
    first_stay_span_days: int = 900
    r: float = 0.9  # BG/NBD purchase rate lambda ~ Gamma(shape=r, rate=alpha)
    alpha: float = 28.0
    a: float = 0.8  # BG/NBD dropout p ~ Beta(a, b)
    b: float = 5.0
    p: float = 6.0  # Gamma-Gamma: room revenue ~ Gamma(shape=p, rate=nu), nu ~ Gamma(shape=q, rate=gamma)
    q: float = 4.0
    gamma: float = 150.0
    cancel_rate: float = 0.06  # share of all bookings that are cancelled extra bookings
    refund_rate: float = 0.01  # share of stays partially refunded
    offer_log_rate: float = 0.40
    upgrade_available_rate: float = 0.5
    duplicate_account_rate: float = 0.03
    crm_rate: float = 0.70
    moved_rate: float = 0.10
    typo_rate: float = 0.05
    missing_email_rate: float = 0.15
    allergy_rate: float = 0.05
    favourite_hotel_share: float = 0.6  # mean share of a guest's bookings at their favourite hotel

    def __post_init__(self) -> None:
        """Reject configurations the generator cannot honour."""
        if self.customers < 1:
            raise ValueError("customers must be positive")
        if (self.end - self.start).days < self.first_stay_span_days or self.first_stay_span_days < 1:
            raise ValueError("first_stay_span_days must be positive and fit between start and end")
        if min(self.r, self.alpha, self.a, self.b, self.p, self.q, self.gamma) <= 0:
            raise ValueError("model parameters must be positive")
        rates = [getattr(self, f.name) for f in fields(self) if f.name.endswith(("_rate", "_share"))]
        if not all(0.0 <= x <= 1.0 for x in rates) or self.cancel_rate >= 1.0:
            raise ValueError("rates and shares must lie in [0, 1], cancel_rate below 1")


@dataclass
class DemoData:
    """Generated frames; ``truth`` is for evaluation only."""

    transactions: pd.DataFrame
    transaction_items: pd.DataFrame
    customers: dict[str, pd.DataFrame]  # "crm", "booking", "billing"
    offers: pd.DataFrame
    offer_log: pd.DataFrame
    truth: dict[str, pd.DataFrame]  # "guests", "identities", "offer_acceptance", "offer_options"


@dataclass(frozen=True)
class _Guests:
    """Latent per-guest draws."""

    first_day: np.ndarray  # first booking, days after start
    lam: np.ndarray
    p_dropout: np.ndarray
    nu: np.ndarray
    business: np.ndarray  # propensity of a business purpose
    prefs: np.ndarray  # (guest, category) logits
    allergic: np.ndarray
    favourite: np.ndarray
    loyalty: np.ndarray  # share of bookings at the favourite hotel
    dup_share: np.ndarray  # share of bookings on the second account (if any)


def _draw_guests(rng: np.random.Generator, c: DemoConfig) -> _Guests:
    """Draw every guest's first booking time and latent parameters."""
    n = c.customers
    popularity = np.array([h.popularity for h in cat.HOTELS])
    share = c.favourite_hotel_share
    return _Guests(
        first_day=rng.uniform(0.0, c.first_stay_span_days, n),
        lam=rng.gamma(c.r, 1.0 / c.alpha, n),
        p_dropout=np.maximum(rng.beta(c.a, c.b, n), 1e-12),
        nu=rng.gamma(c.q, 1.0 / c.gamma, n),
        business=rng.beta(1.2, 2.0, n),
        prefs=rng.normal(0.0, 1.0, (n, len(cat.CATEGORIES))),
        allergic=rng.random(n) < c.allergy_rate,
        favourite=rng.choice(len(cat.HOTELS), size=n, p=popularity / popularity.sum()),
        loyalty=rng.beta(4.0 * share, 4.0 * (1.0 - share), n) if 0 < share < 1 else np.full(n, share),
        dup_share=rng.uniform(0.3, 0.7, n),
    )


def _simulate_stays(rng: np.random.Generator, g: _Guests, window: float) -> tuple[np.ndarray, ...]:
    """BG/NBD stays: (person, day) of all stays, plus per-guest stay count and alive flag at the end.

    Without dropout a guest would book ``M ~ Poisson(lambda * horizon)`` times, at uniform order
    statistics of the horizon; dropout happens after ``K ~ Geometric(p)`` repeat stays, so the first
    ``min(K, M)`` order statistics are kept, generated from exponential spacings.
    """
    n = len(g.first_day)
    horizon = window - g.first_day
    dropout_after = rng.geometric(g.p_dropout)
    arrivals = rng.poisson(g.lam * horizon)
    repeats = np.minimum(dropout_after, arrivals)
    person = np.repeat(np.arange(n), repeats)
    csum = np.cumsum(rng.exponential(size=int(repeats.sum())))
    ends = np.cumsum(repeats)
    before = np.concatenate([[0.0], csum])[ends - repeats]
    partial = csum - before[person]
    last = np.where(repeats > 0, np.concatenate([[0.0], csum])[ends] - before, 0.0)
    total = last + rng.gamma(arrivals - repeats + 1.0)
    day = g.first_day[person] + horizon[person] * partial / total[person]
    return (
        np.concatenate([np.arange(n), person]),
        np.concatenate([g.first_day, day]),
        repeats + 1,
        arrivals < dropout_after,
    )


def _grouped_choice(
    rng: np.random.Generator, group: np.ndarray, probs: dict[bool, list[float]]
) -> np.ndarray:
    """Categorical draw whose probabilities depend on a bool group."""
    u = rng.random(len(group))
    last = len(probs[False]) - 1
    idx = {flag: np.searchsorted(np.cumsum(p), u, side="right") for flag, p in probs.items()}
    return np.minimum(np.where(group, idx[True], idx[False]), last)


@dataclass(frozen=True)
class _Bookings:
    """Per-booking arrays (stays first, then the cancelled extra bookings)."""

    ctx: cat.BookingContext
    ts: np.ndarray  # booking time, seconds after start
    n_stays: int
    account: np.ndarray  # booking-system account number
    account_width: int
    channel: np.ndarray
    check_in: np.ndarray  # days after start
    room_cents: np.ndarray  # room unit price in cents of the hotel currency


def _draw_bookings(
    rng: np.random.Generator,
    c: DemoConfig,
    g: _Guests,
    person: np.ndarray,
    day: np.ndarray,
    accounts: Accounts,
    window: float,
) -> _Bookings:
    """Add the cancelled extra bookings to the stays and draw every booking's attributes."""
    n_stays = len(person)
    n_cancel = rng.poisson(n_stays * c.cancel_rate / (1.0 - c.cancel_rate))
    near = rng.integers(0, n_stays, n_cancel)
    extra_person = person[near]
    extra_day = day[near] + rng.uniform(-30.0, 30.0, n_cancel)
    low = g.first_day[extra_person]
    extra_day = np.where(extra_day < low, 2 * low - extra_day, extra_day)
    extra_day = np.clip(np.where(extra_day >= window, 2 * window - extra_day, extra_day), low, window)
    person = np.concatenate([person, extra_person])
    ts = np.minimum((np.concatenate([day, extra_day]) * 86_400).astype(np.int64), int(window) * 86_400 - 1)
    n = len(person)
    business = rng.random(n) < g.business[person]
    popularity = np.array([h.popularity for h in cat.HOTELS])
    hotel = np.where(
        rng.random(n) < g.loyalty[person],
        g.favourite[person],
        rng.choice(len(cat.HOTELS), size=n, p=popularity / popularity.sum()),
    )
    room = _grouped_choice(rng, g.allergic[person], _ROOM_P)
    z = rng.gamma(c.p, 1.0 / g.nu[person])
    nightly = (
        np.where(business, _NIGHTLY_EUR[True], _NIGHTLY_EUR[False])
        * _ROOM_RATE[room]
        * np.array([h.price_level for h in cat.HOTELS])[hotel]
        * rng.lognormal(0.0, 0.25, n)
    )
    nights = np.clip(np.rint(z / nightly), 1, 21).astype(np.int64)
    fx = np.array([h.fx_per_eur for h in cat.HOTELS])[hotel]
    party = _grouped_choice(rng, business, _PARTY_P) + 1
    lead = np.minimum(rng.exponential(np.where(business, _LEAD_DAYS[True], _LEAD_DAYS[False])), 330)
    channel = _grouped_choice(rng, business, _CHANNEL_P)
    upgrade_available = rng.random(n) < c.upgrade_available_rate
    on_dup = np.zeros(c.customers, dtype=bool)
    on_dup[accounts.dup_person] = True
    dup_number = np.zeros(c.customers, dtype=np.int64)
    dup_number[accounts.dup_person] = accounts.dup_booking
    use_dup = on_dup[person] & (rng.random(n) < g.dup_share[person])
    return _Bookings(
        ctx=cat.BookingContext(person, hotel, room, nights, party, business, upgrade_available),
        ts=ts,
        n_stays=n_stays,
        account=np.where(use_dup, dup_number[person], accounts.booking[person]),
        account_width=id_width(c.customers + len(accounts.dup_person)),
        channel=np.where(use_dup, CHANNELS.index("ota"), channel),
        check_in=ts // 86_400 + lead.astype(np.int64),
        room_cents=np.rint(z * fx * 100 / nights).astype(np.int64),
    )


def _booking_columns(c: DemoConfig, bk: _Bookings, rows: np.ndarray) -> dict[str, pd.Series | np.ndarray]:
    """Booking attributes repeated on transaction and offer-log rows."""
    ctx = bk.ctx
    start = np.datetime64(c.start, "s")
    return {
        "hotel_id": text(pick([h.hotel_id for h in cat.HOTELS], ctx.hotel[rows])),
        "check_in": to_datetime(start, bk.check_in[rows] * 86_400),
        "nights": ctx.nights[rows],
        "guests": ctx.party[rows].astype(np.int64),
        "room_type": text(pick(cat.ROOM_TYPES, ctx.room[rows])),
        "channel": text(pick(CHANNELS, bk.channel[rows])),
        "purpose": text(pick(("leisure", "business"), ctx.business[rows].astype(np.int64))),
    }


def _line_items(bk: _Bookings, extras: np.ndarray) -> tuple[np.ndarray, ...]:
    """(booking, item code, quantity, unit cents) per line, rooms first, then each offer in turn.

    Item codes index ``ROOM_TYPES`` followed by ``OFFERS``.
    """
    ctx = bk.ctx
    n = len(ctx.person)
    parts = [(np.arange(n), ctx.room, ctx.nights, bk.room_cents)]
    for o in range(len(cat.OFFERS)):
        rows = np.flatnonzero(extras[:, o])
        code = np.full(len(rows), len(cat.ROOM_TYPES) + o)
        parts.append((rows, code, cat.quantities(o, ctx, rows), cat.PRICE_CENTS[o, ctx.hotel[rows]]))
    return tuple(np.concatenate(x) for x in zip(*parts, strict=True))


def _follow_ups(
    rng: np.random.Generator, c: DemoConfig, bk: _Bookings, amount: np.ndarray, last_s: int
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


def _transactions(
    rng: np.random.Generator, c: DemoConfig, bk: _Bookings, extras: np.ndarray, last_s: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, pa.Array]:
    """Transactions and line items; also each booking's row position and the transaction ids."""
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
    booked = _booking_columns(c, bk, booking)
    transactions = pd.DataFrame(
        {
            "transaction_id": text(txn_ids),
            "customer_id": text(format_ids("G", bk.account[booking], bk.account_width)),
            "source": text(pick(("booking",), np.zeros(len(booking), dtype=np.int64))),
            "timestamp": to_datetime(np.datetime64(c.start, "s"), ts),
            "amount": cents / 100.0,
            "currency": text(pick([h.currency for h in cat.HOTELS], ctx.hotel[booking])),
            "type": text(pick(("purchase", "cancellation", "refund"), kind)),
            "channel": booked.pop("channel"),
            "reference_id": text(pc.take(txn_ids, pa.array(purchase_pos[booking], mask=kind == 0))),
            **booked,
        }
    )

    pos = purchase_pos[item_booking]
    order = np.argsort(pos, kind="stable")  # within a booking the lines keep their order: room first
    pos, code, qty, unit = pos[order], code[order], qty[order], unit[order]
    starts = np.flatnonzero(code < len(cat.ROOM_TYPES))
    line_no = np.arange(len(pos)) - np.repeat(starts, np.diff(np.append(starts, len(pos)))) + 1
    item_names = [*cat.ROOM_TYPES, *(o.offer_id for o in cat.OFFERS)]
    item_categories = ["room"] * len(cat.ROOM_TYPES) + [o.category for o in cat.OFFERS]
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


def _offer_log(
    rng: np.random.Generator,
    c: DemoConfig,
    bk: _Bookings,
    events: cat.OfferEvents,
    options: cat.OfferOptions,
    purchase_pos: np.ndarray,
    txn_ids: pa.Array,
    last_s: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The offer log, the logged offers' true acceptance probabilities and every option's truth.

    ``events`` are in time order; ``options`` belong to them.
    """
    rows, offer = events.booking, events.offer
    shown = bk.ts[rows]
    responded = np.minimum(shown + 1 + rng.exponential(180.0, len(rows)).astype(np.int64), last_s)
    start = np.datetime64(c.start, "s")
    event_ids = text(format_ids("E", np.arange(1, len(rows) + 1), max(9, len(str(len(rows))))))
    offer_ids = text(pick([o.offer_id for o in cat.OFFERS], offer))
    log = pd.DataFrame(
        {
            "event_id": event_ids,
            "shown_at": to_datetime(start, shown),
            "customer_id": text(format_ids("G", bk.account[rows], bk.account_width)),
            "source": text(pick(("booking",), np.zeros(len(rows), dtype=np.int64))),
            "transaction_id": text(pc.take(txn_ids, pa.array(purchase_pos[rows]))),
            "offer_id": offer_ids,
            **_booking_columns(c, bk, rows),
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
            "event_id": event_ids.take(options.event).reset_index(drop=True),
            "offer_id": text(pick([o.offer_id for o in cat.OFFERS], options.offer)),
            "p_true": options.p_true,
            "quantity": options.quantity,
            "margin_eur": options.margin_eur,
        }
    )
    return log, truth, option_truth


def generate_demo(config: DemoConfig, progress: Callable[[str, float], None] | None = None) -> DemoData:
    """Generate the demo dataset (see the module docstring); ``progress(stage, fraction)`` reports stages."""

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    c = config
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(c.seed).spawn(7)]
    window = float((c.end - c.start).days + 1)
    last_s = int(window) * 86_400 - 1
    # progress(stage starting now, share of the work done), shares measured at 1M guests
    report("simulating stays", 0.0)
    g = _draw_guests(rngs[0], c)
    person, day, n_stays, alive = _simulate_stays(rngs[1], g, window)
    report("drawing bookings", 0.03)
    accounts = draw_accounts(rngs[2], c.customers, c.duplicate_account_rate, c.crm_rate)
    bk = _draw_bookings(rngs[3], c, g, person, day, accounts, window)
    report("choosing extras and offers", 0.12)
    extras = cat.choose_extras(rngs[4], bk.ctx, g.prefs, g.allergic)
    in_crm = np.zeros(c.customers, dtype=bool)
    in_crm[accounts.crm_person] = True
    known_allergy = g.allergic & in_crm
    events = cat.log_offers(rngs[4], bk.ctx, extras, g.prefs, g.allergic, known_allergy, c.offer_log_rate)
    events = events.take(np.argsort(bk.ts[events.booking], kind="stable"))  # booking order -> time order
    report("assembling transactions", 0.37)
    transactions, items, purchase_pos, txn_ids = _transactions(rngs[5], c, bk, extras, last_s)
    options = cat.offer_options(bk.ctx, events, extras, g.prefs, g.allergic)
    del extras
    offer_log, acceptance, option_truth = _offer_log(
        rngs[5], c, bk, events, options, purchase_pos, txn_ids, last_s
    )
    report("rendering customer records", 0.93)
    customers, identities = build_customers(rngs[6], accounts, bk.ts[: c.customers], g.allergic, c)
    on_dup = np.zeros(c.customers, dtype=bool)
    on_dup[accounts.dup_person] = True
    guests = pd.DataFrame(
        {
            "person_id": text(format_ids("P", np.arange(1, c.customers + 1), id_width(c.customers))),
            "first_stay_at": to_datetime(np.datetime64(c.start, "s"), bk.ts[: c.customers]),
            "lambda": g.lam,
            "p_dropout": g.p_dropout,
            "nu": g.nu,
            "business_propensity": g.business,
            **{f"pref_{name}": g.prefs[:, i] for i, name in enumerate(cat.CATEGORIES)},
            "allergic": g.allergic,
            "crm_member": in_crm,
            "duplicate_account": on_dup,
            "alive_at_end": alive,
            "n_stays": n_stays.astype(np.int64),
        }
    )
    report("done", 1.0)
    return DemoData(
        transactions=transactions,
        transaction_items=items,
        customers=customers,
        offers=cat.offers_frame(),
        offer_log=offer_log,
        truth={
            "guests": guests,
            "identities": identities,
            "offer_acceptance": acceptance,
            "offer_options": option_truth,
        },
    )


def _write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write one frame as parquet, or as CSV with ISO 8601 dates and timestamps."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if fmt == "parquet":
        pq.write_table(table, path)
        return
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            pattern = "%Y-%m-%d" if field.name in DATE_COLUMNS else "%Y-%m-%dT%H:%M:%S"
            iso = pc.strftime(table.column(i).cast(pa.timestamp("s")), format=pattern)
            table = table.set_column(i, field.name, iso)
    pacsv.write_csv(table, path)


def write_demo(data: DemoData, out_dir: Path, fmt: Literal["parquet", "csv"] = "parquet") -> list[Path]:
    """Write the frames to ``out_dir`` (truth always as parquet under ``truth/``); return the paths."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}")
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    frames = {
        "transactions": data.transactions,
        "transaction_items": data.transaction_items,
        **{f"customers_{s}": data.customers[s] for s in ("crm", "booking", "billing")},
        "offers": data.offers,
        "offer_log": data.offer_log,
    }
    paths = []
    for name, frame in frames.items():
        paths.append(out_dir / f"{name}.{fmt}")
        _write_table(frame, paths[-1], fmt)
    for name, frame in data.truth.items():
        paths.append(out_dir / "truth" / f"{name}.parquet")
        _write_table(frame, paths[-1], "parquet")
    return paths
