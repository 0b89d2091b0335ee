"""The demo chain's hotels and offer catalogue, with the arrays the simulation indexes by offer."""

from __future__ import annotations

from dataclasses import dataclass

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
    country: str  # ISO 3166-1 alpha-2: the region of phone numbers typed at its desk
    currency: str
    fx_per_eur: float  # local currency units per EUR
    has_spa: bool
    has_parking: bool
    airport_nearby: bool  # sells airport transfers
    popularity: float  # relative share of bookings
    price_level: float  # multiplies the nightly rate

    @property
    def facilities(self) -> tuple[str, ...]:
        """The facility names of the hotels contract (``Hotels.facilities``)."""
        flags = (
            ("spa", self.has_spa),
            ("parking", self.has_parking),
            ("airport_transfer", self.airport_nearby),
        )
        return tuple(name for name, present in flags if present)


HOTELS: tuple[Hotel, ...] = (
    Hotel("H01", "London", "GB", "GBP", 0.86, True, False, False, 1.6, 1.35),
    Hotel("H02", "Paris", "FR", "EUR", 1.0, True, False, False, 1.5, 1.30),
    Hotel("H03", "Paris-Roissy", "FR", "EUR", 1.0, False, True, True, 0.9, 0.95),
    Hotel("H04", "Berlin", "DE", "EUR", 1.0, False, True, False, 1.2, 0.95),
    Hotel("H05", "Munich Airport", "DE", "EUR", 1.0, True, True, True, 0.8, 1.0),
    Hotel("H06", "Amsterdam", "NL", "EUR", 1.0, False, False, False, 1.3, 1.15),
    Hotel("H07", "Barcelona", "ES", "EUR", 1.0, True, True, False, 1.2, 1.05),
    Hotel("H08", "Madrid", "ES", "EUR", 1.0, False, True, False, 1.0, 0.9),
    Hotel("H09", "Rome", "IT", "EUR", 1.0, True, False, False, 1.1, 1.1),
    Hotel("H10", "Milan Linate", "IT", "EUR", 1.0, False, True, True, 0.7, 0.95),
    Hotel("H11", "Vienna", "AT", "EUR", 1.0, True, True, False, 0.9, 1.0),
    Hotel("H12", "Dublin", "IE", "EUR", 1.0, False, True, True, 0.8, 1.05),
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
OFFER_CATEGORY = np.array([CATEGORIES.index(o.category) for o in OFFERS])
OFFER_EFFECTS = np.array([CATEGORY_EFFECTS[o.category] for o in OFFERS])  # (offer, 4)
OFFER_INTERCEPT = np.array([o.intercept for o in OFFERS]) + OFFER_EFFECTS[:, 0]


OFFER_ALLERGY_EFFECT = np.array(
    [
        ALLERGY_CARPET_EFFECT if o.carpeted else ALLERGY_HYPOALLERGENIC_EFFECT if o.hypoallergenic else 0.0
        for o in OFFERS
    ]
)

OFFER_POPULARITY = np.exp(np.array([o.popularity for o in OFFERS]))
MARGIN_EUR = np.array([o.margin for o in OFFERS])  # per unit
_FX = np.array([h.fx_per_eur for h in HOTELS])
PRICE_CENTS = np.rint(100 * np.outer([o.price for o in OFFERS], _FX)).astype(np.int64)


def offers_frame() -> pd.DataFrame:
    """The offers catalogue as written to ``offers.<ext>``."""

    def hotel_list(o: int) -> str | None:
        """``;``-separated hotels offer ``o`` is limited to, None if any hotel with the facilities it
        requires may sell it (the eligibility rules read the facilities from the hotels catalogue)."""
        return ";".join(OFFERS[o].only_hotels) or None

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
    """The hotels catalogue as written to ``hotels.<ext>`` (the ``hotels`` contract's columns)."""
    return pd.DataFrame(
        {
            "hotel_id": [h.hotel_id for h in HOTELS],
            "name": [f"Demo {h.city}" for h in HOTELS],
            "city": [h.city for h in HOTELS],
            "country": [h.country for h in HOTELS],
            "currency": [h.currency for h in HOTELS],
            "room_types": ";".join(ROOM_TYPES),  # every hotel sells every room type
            "facilities": pd.Series([";".join(h.facilities) or None for h in HOTELS], dtype="str"),
        }
    )
