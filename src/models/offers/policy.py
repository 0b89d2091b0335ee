"""The next-best-offer policy: eligible offers ranked by expected margin = P(accept) x margin x quantity.

A price and margin are per unit (``stay``, ``night``, ``guest``, ``guest_night``; missing = stay), so an
offer's value in a booking is its margin times the quantity the booking implies. Each suggestion
carries a short reason drawn from the guest's own history where there is one ("took breakfast on 4 of
5 stays"), from the booking otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.features.behaviour import column_suffix

UNITS = ("stay", "night", "guest", "guest_night")


def unit_array(units: pd.Series) -> np.ndarray:
    """Offers' units as strings, null = ``stay``; a ValueError names an unknown unit."""
    unit = units.fillna("stay").to_numpy(dtype=str)
    unknown = sorted(set(unit) - set(UNITS))
    if unknown:
        raise ValueError(f"unit: expected one of {', '.join(UNITS)}, got {unknown[0]!r}")
    return unit


@dataclass(frozen=True)
class Units:
    """Which offers are priced per night and which per guest (``guest_night``: both)."""

    per_night: np.ndarray
    per_guest: np.ndarray

    @classmethod
    def of(cls, units: pd.Series | np.ndarray) -> Units:
        """From a unit column (a Series, or an array from :func:`unit_array`)."""
        unit = units if isinstance(units, np.ndarray) else unit_array(units)
        return cls(np.isin(unit, ("night", "guest_night")), np.isin(unit, ("guest", "guest_night")))

    def quantities(self, nights: np.ndarray, guests: np.ndarray) -> np.ndarray:
        """(events x offers) quantity of each offer in each booking."""
        n = np.asarray(nights, dtype=float)[:, None]
        g = np.asarray(guests, dtype=float)[:, None]
        return np.where(self.per_night[None, :], n, 1.0) * np.where(self.per_guest[None, :], g, 1.0)


def quantities(units: pd.Series | np.ndarray, nights: np.ndarray, guests: np.ndarray) -> np.ndarray:
    """(events x offers) quantity of each offer in each booking, by the offer's unit (a Series, or
    an array from :func:`unit_array`)."""
    return Units.of(units).quantities(nights, guests)


def margins(offers: pd.DataFrame, nights: np.ndarray, guests: np.ndarray) -> np.ndarray:
    """(events x offers) margin each offer earns in each booking: its margin times the unit's quantity
    (a catalogue without ``unit`` is per stay)."""
    units = offers["unit"] if "unit" in offers.columns else pd.Series(["stay"] * len(offers))
    return offers["margin"].to_numpy(float)[None, :] * quantities(units, nights, guests)


def best_offer(expected: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per event, the column of the allowed offer with the highest expected value (-1 when none is)."""
    masked = np.where(allowed, expected, -np.inf)
    choice = masked.argmax(axis=1)
    return np.where(allowed.any(axis=1), choice, -1)


def reason(category: str, customer: Mapping[str, Any] | None, purpose: str | None) -> str:
    """Why this offer: the guest's own uptake of the category when known, else the booking's purpose."""
    if customer is not None:
        rate = customer.get(f"extras_rate_{column_suffix(category)}")
        frequency = customer.get("frequency")
        stays = int(frequency) + 1 if frequency is not None and pd.notna(frequency) else 0
        if rate is not None and pd.notna(rate) and rate > 0 and stays:
            return f"took {category.replace('_', ' ')} on {round(rate * stays)} of {stays} stays"
    label = f"{purpose} guests" if purpose else "guests"
    return f"often taken by {label} on similar bookings"
