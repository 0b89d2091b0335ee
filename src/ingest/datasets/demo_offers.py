"""Hotels, offer catalogue, extras bought with bookings and the randomised offer-logging policy.

Part of the synthetic demo chain; the generative process is described in
:mod:`crm_analytics.ingest.datasets.demo`. Everything here works on per-booking numpy arrays
(:class:`BookingContext`); loops run over the twelve offers only.

:func:`offer_options` gives the ground truth an offline evaluation of offer policies needs: for every
logged offer event, each offer the true facts allow, its true acceptance probability and its margin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from crm_analytics.ingest.contracts import OFFER_UNITS

ROOM_TYPES: tuple[str, ...] = ("standard", "deluxe", "suite", "hypoallergenic")

CATEGORIES: tuple[str, ...] = (
    "breakfast",
    "spa",
    "late_checkout",
    "parking",
    "transfer",
    "upgrade",
    "celebration",
    "early_checkin",
    "dining",
)

# Context effects on the logit of buying/accepting an extra of each category:
# (intercept, business trip, log(nights), party of two or more).
CATEGORY_EFFECTS: dict[str, tuple[float, float, float, float]] = {
    "breakfast": (0.2, 0.4, 0.3, 0.3),
    "spa": (-0.8, -1.2, 0.4, 0.6),
    "late_checkout": (-0.9, 0.3, -0.2, 0.0),
    "parking": (-0.9, 0.4, 0.1, 0.2),
    "transfer": (-1.0, 0.6, 0.0, -0.3),
    "upgrade": (-0.9, -0.3, -0.2, 0.4),
    "celebration": (-1.6, -1.5, 0.0, 0.9),
    "early_checkin": (-1.2, 0.6, -0.2, 0.0),
    "dining": (-1.0, -0.4, 0.3, 0.6),
}

ORGANIC_SHIFT = -1.5  # buying unprompted is less likely than accepting a shown offer
ALLERGY_CARPET_EFFECT = -3.0  # allergic guests rarely want a carpeted room
ALLERGY_HYPOALLERGENIC_EFFECT = 2.0


@dataclass(frozen=True)
class Hotel:
    """One hotel of the chain; facilities decide which offers it can sell."""

    hotel_id: str
    city: str
    currency: str
    fx_per_eur: float  # local currency units per EUR
    has_spa: bool
    has_parking: bool
    airport_nearby: bool
    popularity: float  # relative share of bookings
    price_level: float  # multiplies the nightly rate


HOTELS: tuple[Hotel, ...] = (
    Hotel("H01", "London", "GBP", 0.86, True, False, False, 1.6, 1.35),
    Hotel("H02", "Paris", "EUR", 1.0, True, False, False, 1.5, 1.30),
    Hotel("H03", "Paris-Roissy", "EUR", 1.0, False, True, True, 0.9, 0.95),
    Hotel("H04", "Berlin", "EUR", 1.0, False, True, False, 1.2, 0.95),
    Hotel("H05", "Munich Airport", "EUR", 1.0, True, True, True, 0.8, 1.0),
    Hotel("H06", "Amsterdam", "EUR", 1.0, False, False, False, 1.3, 1.15),
    Hotel("H07", "Barcelona", "EUR", 1.0, True, True, False, 1.2, 1.05),
    Hotel("H08", "Madrid", "EUR", 1.0, False, True, False, 1.0, 0.9),
    Hotel("H09", "Rome", "EUR", 1.0, True, False, False, 1.1, 1.1),
    Hotel("H10", "Milan Linate", "EUR", 1.0, False, True, True, 0.7, 0.95),
    Hotel("H11", "Vienna", "EUR", 1.0, True, True, False, 0.9, 1.0),
    Hotel("H12", "Dublin", "EUR", 1.0, False, True, True, 0.8, 1.05),
)


@dataclass(frozen=True)
class Offer:
    """One sellable extra; ``price`` and ``margin`` are EUR per ``unit`` (stay/night/guest/guest_night)."""

    offer_id: str
    name: str
    category: str
    price: float
    margin: float
    unit: str
    intercept: float  # offer-specific shift of the category logit
    popularity: float  # score of the logging policy (softmax over eligible offers)
    requires_spa: bool = False
    requires_parking: bool = False
    requires_airport: bool = False
    room_types: tuple[str, ...] = ()  # empty: any room type
    only_hotels: tuple[str, ...] = ()  # empty: any hotel (facility rules still apply)
    min_nights: int = 1
    carpeted: bool = False
    hypoallergenic: bool = False

    def __post_init__(self) -> None:
        """Reject a unit the contract and :func:`quantities` do not know."""
        if self.unit not in OFFER_UNITS:
            raise ValueError(f"unit must be one of {', '.join(OFFER_UNITS)}, not {self.unit!r}")


OFFERS: tuple[Offer, ...] = (
    Offer("O01", "Breakfast buffet", "breakfast", 18.0, 11.0, "guest_night", 0.0, 1.2),
    Offer("O02", "Spa package", "spa", 65.0, 38.0, "guest", 0.0, 0.8, requires_spa=True),
    Offer("O03", "Late checkout", "late_checkout", 35.0, 30.0, "stay", 0.0, 0.6),
    Offer("O04", "Parking", "parking", 22.0, 15.0, "night", 0.0, 0.2, requires_parking=True),
    Offer("O05", "Airport transfer", "transfer", 55.0, 20.0, "stay", 0.0, 0.3, requires_airport=True),
    Offer(
        "O06",
        "Upgrade to deluxe",
        "upgrade",
        40.0,
        34.0,
        "night",
        0.3,
        1.0,
        room_types=("standard",),
        carpeted=True,
    ),
    Offer(
        "O07",
        "Upgrade to suite",
        "upgrade",
        110.0,
        85.0,
        "night",
        -0.6,
        0.4,
        room_types=("standard", "deluxe"),
        carpeted=True,
    ),
    Offer(
        "O08",
        "Upgrade to hypoallergenic room",
        "upgrade",
        25.0,
        20.0,
        "night",
        -0.8,
        0.3,
        room_types=("standard", "deluxe"),
        hypoallergenic=True,
    ),
    Offer("O09", "Champagne on arrival", "celebration", 59.0, 32.0, "stay", 0.0, 0.5),
    Offer("O10", "Early check-in", "early_checkin", 30.0, 26.0, "stay", 0.0, 0.4),
    Offer(
        "O11",
        "Rooftop dinner",
        "dining",
        48.0,
        21.0,
        "guest",
        0.0,
        0.7,
        only_hotels=("H01", "H02", "H07", "H09"),
    ),
    Offer("O12", "Spa day for two", "spa", 160.0, 95.0, "stay", -0.5, 0.5, requires_spa=True, min_nights=2),
)


def _hotel_allowed(offer: Offer) -> np.ndarray:
    """Bool per hotel: whether the hotel sells ``offer``."""
    return np.array(
        [
            (not offer.only_hotels or h.hotel_id in offer.only_hotels)
            and (h.has_spa or not offer.requires_spa)
            and (h.has_parking or not offer.requires_parking)
            and (h.airport_nearby or not offer.requires_airport)
            for h in HOTELS
        ]
    )


HOTEL_OK = np.stack([_hotel_allowed(o) for o in OFFERS], axis=1)  # (hotel, offer)
ROOM_OK = np.array([[not o.room_types or r in o.room_types for o in OFFERS] for r in ROOM_TYPES])
MIN_NIGHTS = np.array([o.min_nights for o in OFFERS])
IS_UPGRADE = np.array([o.category == "upgrade" for o in OFFERS])
CARPETED = np.array([o.carpeted for o in OFFERS])
_CAT = np.array([CATEGORIES.index(o.category) for o in OFFERS])
_EFFECTS = np.array([CATEGORY_EFFECTS[o.category] for o in OFFERS])  # (offer, 4)
_INTERCEPT = np.array([o.intercept for o in OFFERS]) + _EFFECTS[:, 0]
_ALLERGY = np.array(
    [
        ALLERGY_CARPET_EFFECT if o.carpeted else ALLERGY_HYPOALLERGENIC_EFFECT if o.hypoallergenic else 0.0
        for o in OFFERS
    ]
)
_POPULARITY = np.exp(np.array([o.popularity for o in OFFERS]))
MARGIN_EUR = np.array([o.margin for o in OFFERS])  # per unit
# Unit price in cents of the hotel's currency, (offer, hotel).
_FX = np.array([h.fx_per_eur for h in HOTELS])
PRICE_CENTS = np.rint(100 * np.outer([o.price for o in OFFERS], _FX)).astype(np.int64)


@dataclass(frozen=True)
class BookingContext:
    """Per-booking arrays (one entry per booking) read by the extras and offer rules."""

    person: np.ndarray
    hotel: np.ndarray  # index into HOTELS
    room: np.ndarray  # index into ROOM_TYPES
    nights: np.ndarray
    party: np.ndarray
    business: np.ndarray  # bool
    upgrade_available: np.ndarray  # bool

    def take(self, rows: np.ndarray) -> BookingContext:
        """The bookings ``rows``, in that order."""
        return BookingContext(*(getattr(self, f.name)[rows] for f in fields(self)))


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


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def eligibility(ctx: BookingContext, rows: np.ndarray, allergic: np.ndarray) -> np.ndarray:
    """(len(rows), n_offers) bool: facility, room type, nights, upgrade availability and allergy rules."""
    ok = HOTEL_OK[ctx.hotel[rows]] & ROOM_OK[ctx.room[rows]]
    ok &= ctx.nights[rows, None] >= MIN_NIGHTS
    ok &= ctx.upgrade_available[rows, None] | ~IS_UPGRADE
    ok &= ~(allergic[:, None] & CARPETED)
    return ok


def utility(
    offer: np.ndarray | int, ctx: BookingContext, rows: np.ndarray, prefs: np.ndarray, allergic: np.ndarray
) -> np.ndarray:
    """True logit of taking ``offer`` (scalar or per row) for the bookings ``rows``."""
    eff = _EFFECTS[offer]
    return (
        prefs[ctx.person[rows], _CAT[offer]]
        + _INTERCEPT[offer]
        + eff[..., 1] * ctx.business[rows]
        + eff[..., 2] * np.log(ctx.nights[rows])
        + eff[..., 3] * (ctx.party[rows] >= 2)
        + _ALLERGY[offer] * allergic[ctx.person[rows]]
    )


def candidates(ctx: BookingContext, rows: np.ndarray, booked: np.ndarray, allergic: np.ndarray) -> np.ndarray:
    """(len(rows), n_offers) bool: offers eligible for ``rows`` that are not ``booked``; no second upgrade.

    ``allergic`` has one entry per row: the allergy the rules are applied with.
    """
    elig = eligibility(ctx, rows, allergic) & ~booked
    elig[:, IS_UPGRADE] &= ~booked[:, IS_UPGRADE].any(axis=1, keepdims=True)
    return elig


def choose_extras(
    rng: np.random.Generator, ctx: BookingContext, prefs: np.ndarray, allergic: np.ndarray
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
    ctx: BookingContext,
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
    weights = elig * _POPULARITY
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


def quantities(offer: int, ctx: BookingContext, rows: np.ndarray) -> np.ndarray:
    """Quantity of ``offer`` on the bookings ``rows`` (by its unit: stay, night, guest, guest-night)."""
    unit = OFFERS[offer].unit
    nights = ctx.nights[rows].astype(np.int64) if "night" in unit else 1
    party = ctx.party[rows].astype(np.int64) if "guest" in unit else 1
    return np.broadcast_to(nights * party, len(rows)).copy()


def offer_options(
    ctx: BookingContext, events: OfferEvents, extras: np.ndarray, prefs: np.ndarray, allergic: np.ndarray
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


def offers_frame() -> pd.DataFrame:
    """The offers catalogue as written to ``offers.<ext>``."""

    def hotel_list(o: int) -> str | None:
        """``;``-separated hotels selling offer ``o``, None if all do."""
        allowed = HOTEL_OK[:, o]
        names = [h.hotel_id for h, ok in zip(HOTELS, allowed, strict=True) if ok]
        return None if allowed.all() else ";".join(names)

    return pd.DataFrame(
        {
            "offer_id": [o.offer_id for o in OFFERS],
            "name": [o.name for o in OFFERS],
            "category": [o.category for o in OFFERS],
            "price": [o.price for o in OFFERS],
            "margin": [o.margin for o in OFFERS],
            "unit": [o.unit for o in OFFERS],
            "hotel_ids": pd.Series([hotel_list(i) for i in range(len(OFFERS))], dtype="str"),
            "requires_spa": [o.requires_spa for o in OFFERS],
            "requires_parking": [o.requires_parking for o in OFFERS],
            "requires_airport": [o.requires_airport for o in OFFERS],
            "room_types": pd.Series([";".join(o.room_types) or None for o in OFFERS], dtype="str"),
            "min_nights": np.array([o.min_nights for o in OFFERS], dtype=np.int64),
            "carpeted": [o.carpeted for o in OFFERS],
            "hypoallergenic": [o.hypoallergenic for o in OFFERS],
        }
    )


def hotels_frame() -> pd.DataFrame:
    """Hotel attributes (not written by :func:`write_demo`; used by tests and docs)."""
    return pd.DataFrame([asdict(h) for h in HOTELS]).drop(columns=["popularity", "price_level"])
