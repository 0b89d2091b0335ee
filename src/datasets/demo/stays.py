"""Guests and their bookings: latent draws, BG/NBD stays, cancelled extra bookings and each booking's
attributes (hotel, room, nights, party, channel, lead time, account)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from crm_analytics.datasets.demo import catalogue
from crm_analytics.datasets.demo import offers as cat
from crm_analytics.datasets.demo.config import DemoConfig
from crm_analytics.datasets.demo.people import Accounts, id_width, pick, text, to_datetime
from crm_analytics.datasets.demo.shifts import direct_to_ota, price_factor, seconds_from

CHANNELS: tuple[str, ...] = ("direct", "web", "ota", "phone", "corporate")
_CHANNEL_P = {False: [0.2, 0.35, 0.35, 0.1, 0.0], True: [0.2, 0.25, 0.15, 0.05, 0.35]}  # by business
_ROOM_P = {False: [0.55, 0.27, 0.08, 0.10], True: [0.35, 0.12, 0.05, 0.48]}  # by allergic
_PARTY_P = {False: [0.22, 0.55, 0.13, 0.10], True: [0.88, 0.12, 0.0, 0.0]}  # sizes 1..4, by business
_NIGHTLY_EUR = {False: 105.0, True: 150.0}  # by business
_ROOM_RATE = np.array([1.0, 1.35, 2.3, 1.15])
_LEAD_DAYS = {False: 35.0, True: 7.0}  # mean lead time, by business


@dataclass(frozen=True)
class Guests:
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


def draw_guests(rng: np.random.Generator, c: DemoConfig) -> Guests:
    """Draw every guest's first booking time and latent parameters."""
    n = c.customers
    popularity = np.array([h.popularity for h in catalogue.HOTELS])
    share = c.favourite_hotel_share
    return Guests(
        first_day=rng.uniform(0.0, c.first_stay_span_days, n),
        lam=rng.gamma(c.r, 1.0 / c.alpha, n),
        p_dropout=np.maximum(rng.beta(c.a, c.b, n), 1e-12),
        nu=rng.gamma(c.q, 1.0 / c.gamma, n),
        business=rng.beta(1.2, 2.0, n),
        prefs=rng.normal(0.0, 1.0, (n, len(catalogue.CATEGORIES))),
        allergic=rng.random(n) < c.allergy_rate,
        favourite=rng.choice(len(catalogue.HOTELS), size=n, p=popularity / popularity.sum()),
        loyalty=rng.beta(4.0 * share, 4.0 * (1.0 - share), n) if 0 < share < 1 else np.full(n, share),
        dup_share=rng.uniform(0.3, 0.7, n),
    )


@dataclass(frozen=True)
class Stays:
    """The BG/NBD stays: first stays (one per guest, in guest order), then the repeat stays by guest."""

    person: np.ndarray
    day: np.ndarray  # days after start
    dropout_after: np.ndarray  # per guest: K, the repeat stay after which the guest drops out
    arrivals: np.ndarray  # per guest: M, the repeat stays the guest would make without dropout

    def repeats(self) -> np.ndarray:
        """Per guest: repeat stays made, ``min(K, M)``."""
        return np.minimum(self.dropout_after, self.arrivals)


def simulate_stays(rng: np.random.Generator, g: Guests, window: float) -> Stays:
    """BG/NBD stays of every guest (first stays, then repeat stays in time order per guest).

    Without dropout a guest would book ``M ~ Poisson(lambda * horizon)`` times, at uniform order
    statistics of the horizon; dropout happens after ``K ~ Geometric(p)`` repeat stays, so the first
    ``min(K, M)`` order statistics are kept, generated from exponential spacings (the sum of the rest
    drawn at once). Keeping fewer of them later (a churn shift) leaves the kept days unchanged.
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
    return Stays(
        np.concatenate([np.arange(n), person]), np.concatenate([g.first_day, day]), dropout_after, arrivals
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
class Bookings:
    """Per-booking arrays (stays first, then the cancelled extra bookings)."""

    ctx: cat.BookingDraws
    ts: np.ndarray  # booking time, seconds after start
    n_stays: int
    stay: np.ndarray  # the stay a booking belongs to: itself, or the stay a cancelled one was made near
    account: np.ndarray  # booking-system account number
    account_width: int
    channel: np.ndarray
    check_in: np.ndarray  # days after start
    room_cents: np.ndarray  # room unit price in cents of the hotel currency


def draw_bookings(
    rng: np.random.Generator,
    c: DemoConfig,
    g: Guests,
    person: np.ndarray,
    day: np.ndarray,
    accounts: Accounts,
    window: float,
) -> Bookings:
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
    popularity = np.array([h.popularity for h in catalogue.HOTELS])
    hotel = np.where(
        rng.random(n) < g.loyalty[person],
        g.favourite[person],
        rng.choice(len(catalogue.HOTELS), size=n, p=popularity / popularity.sum()),
    )
    room = _grouped_choice(rng, g.allergic[person], _ROOM_P)
    z = rng.gamma(c.p, 1.0 / g.nu[person])
    nightly = (
        np.where(business, _NIGHTLY_EUR[True], _NIGHTLY_EUR[False])
        * _ROOM_RATE[room]
        * np.array([h.price_level for h in catalogue.HOTELS])[hotel]
        * rng.lognormal(0.0, 0.25, n)
    )
    nights = np.clip(np.rint(z / nightly), 1, 21).astype(np.int64)
    fx = np.array([h.fx_per_eur for h in catalogue.HOTELS])[hotel]
    party = _grouped_choice(rng, business, _PARTY_P) + 1
    lead = np.minimum(rng.exponential(np.where(business, _LEAD_DAYS[True], _LEAD_DAYS[False])), 330)
    channel = _grouped_choice(rng, business, _CHANNEL_P)
    upgrade_available = rng.random(n) < c.upgrade_available_rate
    on_dup = np.zeros(c.customers, dtype=bool)
    on_dup[accounts.dup_person] = True
    dup_number = np.zeros(c.customers, dtype=np.int64)
    dup_number[accounts.dup_person] = accounts.dup_booking
    use_dup = on_dup[person] & (rng.random(n) < g.dup_share[person])
    return Bookings(
        ctx=cat.BookingDraws(person, hotel, room, nights, party, business, upgrade_available),
        ts=ts,
        n_stays=n_stays,
        stay=np.concatenate([np.arange(n_stays), near]),
        account=np.where(use_dup, dup_number[person], accounts.booking[person]),
        account_width=id_width(c.customers + len(accounts.dup_person)),
        channel=np.where(use_dup, CHANNELS.index("ota"), channel),
        check_in=ts // 86_400 + lead.astype(np.int64),
        room_cents=np.rint(z * fx * 100 / nights).astype(np.int64),
    )


def shift_bookings(
    c: DemoConfig, bk: Bookings, stays: Stays, limit: np.ndarray
) -> tuple[Bookings, np.ndarray]:
    """Apply ``c.shifts`` to the drawn bookings: their prices and channels, and whether each is still made.

    ``limit`` holds each guest's repeat stays under the churn shifts (see ``shifts.churn_limits``). A
    stay beyond it is not made, nor a cancelled booking near it dated after the first churn shift.
    """
    if not c.shifts:
        return bk, np.ones(len(bk.ts), dtype=bool)
    repeat_person = stays.person[c.customers :]
    first_repeat = np.cumsum(stays.repeats()) - stays.repeats()
    repeat_no = np.arange(len(repeat_person)) - first_repeat[repeat_person] + 1
    stay_kept = np.concatenate([np.ones(c.customers, dtype=bool), repeat_no <= limit[repeat_person]])
    churn = [s.date for s in c.shifts if s.kind == "churn"]
    kept = stay_kept[bk.stay] | (bk.ts < seconds_from(c.start, min(churn, default=c.end)))
    shifted = replace(
        bk,
        room_cents=np.rint(bk.room_cents * price_factor(c.shifts, c.start, bk.ts)).astype(np.int64),
        channel=direct_to_ota(
            c.shifts, c.start, bk.ts, bk.channel, CHANNELS.index("direct"), CHANNELS.index("ota")
        ),
    )
    return shifted, kept


def booking_columns(c: DemoConfig, bk: Bookings, rows: np.ndarray) -> dict[str, pd.Series | np.ndarray]:
    """Booking attributes repeated on transaction and offer-log rows."""
    ctx = bk.ctx
    start = np.datetime64(c.start, "s")
    return {
        "hotel_id": text(pick([h.hotel_id for h in catalogue.HOTELS], ctx.hotel[rows])),
        "check_in": to_datetime(start, bk.check_in[rows] * 86_400),
        "nights": ctx.nights[rows],
        "guests": ctx.party[rows].astype(np.int64),
        "room_type": text(pick(catalogue.ROOM_TYPES, ctx.room[rows])),
        "channel": text(pick(CHANNELS, bk.channel[rows])),
        "purpose": text(pick(("leisure", "business"), ctx.business[rows].astype(np.int64))),
    }
