"""Extras bought with bookings and the randomised offer-logging policy of the demo chain.

Part of the synthetic demo chain; the generative process is described in
:mod:`crm_analytics.datasets.demo`. Everything here works on per-booking numpy arrays
(:class:`BookingDraws`); loops run over the twelve offers only.

:func:`offer_options` gives the ground truth an offline evaluation of offer policies needs: for every
logged offer event, each offer the true facts allow, its true acceptance probability and its margin.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from crm_analytics.datasets.demo.catalogue import (
    CARPETED,
    HOTEL_OK,
    IS_UPGRADE,
    MARGIN_EUR,
    MIN_NIGHTS,
    OFFER_ALLERGY_EFFECT,
    OFFER_CATEGORY,
    OFFER_EFFECTS,
    OFFER_INTERCEPT,
    OFFER_POPULARITY,
    OFFERS,
    ORGANIC_SHIFT,
    ROOM_OK,
)


@dataclass(frozen=True)
class BookingDraws:
    """Per-booking arrays (one entry per booking) read by the extras and offer rules."""

    person: np.ndarray
    hotel: np.ndarray  # index into HOTELS
    room: np.ndarray  # index into ROOM_TYPES
    nights: np.ndarray
    party: np.ndarray
    business: np.ndarray  # bool
    upgrade_available: np.ndarray  # bool

    def take(self, rows: np.ndarray) -> BookingDraws:
        """The bookings ``rows``, in that order."""
        return BookingDraws(*(getattr(self, f.name)[rows] for f in fields(self)))


@dataclass(frozen=True)
class OfferEvents:
    """Offers shown by the logging policy, one entry per event."""

    booking: np.ndarray
    offer: np.ndarray
    propensity: np.ndarray
    p_true: np.ndarray
    accepted: np.ndarray

    def take(self, idx: np.ndarray) -> OfferEvents:
        """The events at positions ``idx``, in that order."""
        return OfferEvents(*(getattr(self, f.name)[idx] for f in fields(self)))


@dataclass(frozen=True)
class OfferOptions:
    """Offers a logged event could have shown under the true facts: one entry per (event, offer).

    Entries are ordered by event, then offer; ``event`` indexes the :class:`OfferEvents` they belong to.
    """

    event: np.ndarray
    offer: np.ndarray  # index into OFFERS
    p_true: np.ndarray  # sigmoid of the true utility
    quantity: np.ndarray  # units the offer would be sold in (see quantities())
    margin_eur: np.ndarray  # margin per unit x quantity

    def take(self, idx: np.ndarray) -> OfferOptions:
        """The entries at positions ``idx``, in that order."""
        return OfferOptions(*(getattr(self, f.name)[idx] for f in fields(self)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def eligibility(ctx: BookingDraws, rows: np.ndarray, allergic: np.ndarray) -> np.ndarray:
    """(len(rows), n_offers) bool: facility, room type, nights, upgrade availability and allergy rules."""
    ok = HOTEL_OK[ctx.hotel[rows]] & ROOM_OK[ctx.room[rows]]
    ok &= ctx.nights[rows, None] >= MIN_NIGHTS
    ok &= ctx.upgrade_available[rows, None] | ~IS_UPGRADE
    ok &= ~(allergic[:, None] & CARPETED)
    return ok


def utility(
    offer: np.ndarray | int, ctx: BookingDraws, rows: np.ndarray, prefs: np.ndarray, allergic: np.ndarray
) -> np.ndarray:
    """True logit of taking ``offer`` (scalar or per row) for the bookings ``rows``."""
    eff = OFFER_EFFECTS[offer]
    return (
        prefs[ctx.person[rows], OFFER_CATEGORY[offer]]
        + OFFER_INTERCEPT[offer]
        + eff[..., 1] * ctx.business[rows]
        + eff[..., 2] * np.log(ctx.nights[rows])
        + eff[..., 3] * (ctx.party[rows] >= 2)
        + OFFER_ALLERGY_EFFECT[offer] * allergic[ctx.person[rows]]
    )


def candidates(ctx: BookingDraws, rows: np.ndarray, booked: np.ndarray, allergic: np.ndarray) -> np.ndarray:
    """(len(rows), n_offers) bool: offers eligible for ``rows`` that are not ``booked``; no second upgrade.

    ``allergic`` has one entry per row: the allergy the rules are applied with.
    """
    elig = eligibility(ctx, rows, allergic) & ~booked
    elig[:, IS_UPGRADE] &= ~booked[:, IS_UPGRADE].any(axis=1, keepdims=True)
    return elig


def choose_extras(
    rng: np.random.Generator, ctx: BookingDraws, prefs: np.ndarray, allergic: np.ndarray
) -> np.ndarray:
    """(n_bookings, n_offers) bool of extras bought unprompted; at most one upgrade per booking."""
    n = len(ctx.person)
    rows = np.arange(n)
    elig = eligibility(ctx, rows, allergic[ctx.person])
    extras = np.zeros((n, len(OFFERS)), dtype=bool)
    upgraded = np.zeros(n, dtype=bool)
    for o in range(len(OFFERS)):
        p = sigmoid(utility(o, ctx, rows, prefs, allergic) + ORGANIC_SHIFT)
        buy = elig[:, o] & (rng.random(n) < p)
        if IS_UPGRADE[o]:
            buy &= ~upgraded
            upgraded |= buy
        extras[:, o] = buy
    return extras


def log_offers(
    rng: np.random.Generator,
    ctx: BookingDraws,
    extras: np.ndarray,
    prefs: np.ndarray,
    allergic: np.ndarray,
    allergy_known: np.ndarray,
    rate: float,
) -> OfferEvents:
    """Show one eligible offer on a ``rate`` share of bookings; accepted offers are added to ``extras``.

    The policy draws offer o with probability exp(popularity_o) / sum over eligible offers and
    records it as ``propensity``; acceptance is Bernoulli(sigmoid(true utility)).
    """
    rows = np.flatnonzero(rng.random(len(ctx.person)) < rate)
    elig = candidates(ctx, rows, extras[rows], allergy_known[ctx.person[rows]])
    weights = elig * OFFER_POPULARITY
    keep = weights.any(axis=1)
    rows, weights = rows[keep], weights[keep]
    cumulative = np.cumsum(weights, axis=1)
    total = cumulative[:, -1]
    offer = (cumulative <= (rng.random(len(rows)) * total)[:, None]).sum(axis=1)
    propensity = weights[np.arange(len(rows)), offer] / total
    p_true = sigmoid(utility(offer, ctx, rows, prefs, allergic))
    accepted = rng.random(len(rows)) < p_true
    extras[rows[accepted], offer[accepted]] = True
    return OfferEvents(rows, offer, propensity, p_true, accepted)


def quantities(offer: int, ctx: BookingDraws, rows: np.ndarray) -> np.ndarray:
    """Quantity of ``offer`` on the bookings ``rows`` (by its unit: stay, night, guest, guest-night)."""
    unit = OFFERS[offer].unit
    nights = ctx.nights[rows].astype(np.int64) if "night" in unit else 1
    party = ctx.party[rows].astype(np.int64) if "guest" in unit else 1
    return np.broadcast_to(nights * party, len(rows)).copy()


def offer_options(
    ctx: BookingDraws, events: OfferEvents, extras: np.ndarray, prefs: np.ndarray, allergic: np.ndarray
) -> OfferOptions:
    """Every offer each event's booking could take under the true facts, with its truth (see OfferOptions).

    The candidates are built as :func:`log_offers` builds them (eligibility, not already booked, no
    second upgrade) but with the guest's true allergy instead of the one the CRM records. ``extras``
    is the matrix *after* :func:`log_offers`: the offers accepted at the events are taken back out, which
    restores exactly what was booked when the offer was shown (a shown offer was never already booked).
    The logged offer is therefore among its event's options unless the true facts forbid it: a carpeted
    upgrade shown to an allergic guest whose allergy the CRM does not know. Such an event keeps its
    other options (possibly none), and its logged offer's ``p_true`` remains in ``events``. ``p_true`` is
    computed with the same :func:`utility` as the logged acceptance, so the two agree on the logged offer.
    """
    booked = extras[events.booking]
    accepted = np.flatnonzero(events.accepted)
    booked[accepted, events.offer[accepted]] = False
    sub = ctx.take(events.booking)  # one entry per event: contiguous gathers below
    elig = candidates(sub, np.arange(len(events.booking)), booked, allergic[sub.person])
    del booked
    per_event = elig.sum(axis=1)
    first = np.cumsum(per_event) - per_event  # next free position in each event's block of options
    n = int(per_event.sum())
    offer = np.empty(n, dtype=np.int8)
    p_true = np.empty(n)
    quantity = np.empty(n, dtype=np.int64)
    for o in range(len(OFFERS)):
        sel = np.flatnonzero(elig[:, o])
        pos = first[sel]
        first[sel] += 1
        offer[pos] = o
        p_true[pos] = sigmoid(utility(o, sub, sel, prefs, allergic))
        quantity[pos] = quantities(o, sub, sel)
    event = np.repeat(np.arange(len(events.booking)), per_event)
    return OfferOptions(event, offer, p_true, quantity, MARGIN_EUR[offer] * quantity)
