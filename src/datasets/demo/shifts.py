"""Planted changes of the demo world from a date on: prices, channels, churn.

A shift never changes a random draw: the world is drawn as without it, then the bookings made on or
after its date are edited (``price``, ``channel``) or the stays a guest no longer makes are removed
(``churn``). Everything dated before the earliest shift is therefore identical to the unshifted world
with the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

PRICE_FACTOR = 1.25
CHURN_WAVE = 0.5  # the share of returning guests a churn shift stops at its date
SHIFT_KINDS: dict[str, str] = {
    "price": f"room revenue of bookings made on or after the date x{PRICE_FACTOR}",
    "channel": "direct bookings made on or after the date go through an OTA instead",
    "churn": f"each guest who would still come back stops at the date with probability {CHURN_WAVE}",
}


@dataclass(frozen=True, order=True)
class Shift:
    """A change of the demo world from ``date`` on; ``kind`` is one of :data:`SHIFT_KINDS`."""

    date: date
    kind: str

    def __post_init__(self) -> None:
        """Reject an unknown kind."""
        if self.kind not in SHIFT_KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(SHIFT_KINDS)}")

    def as_dict(self) -> dict[str, str]:
        """Date, kind and what it does, as written to ``truth/shifts.json``."""
        return {"date": self.date.isoformat(), "kind": self.kind, "description": SHIFT_KINDS[self.kind]}


def parse_shift(text: str) -> Shift:
    """``"2025-12-15:price"`` -> ``Shift(date(2025, 12, 15), "price")``; a ValueError says what is wrong."""
    day, sep, kind = text.strip().partition(":")
    if not sep:
        raise ValueError(f"expected DATE:KIND such as 2025-12-15:price, got {text!r}")
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"expected a date as YYYY-MM-DD before ':', got {day!r}") from None
    return Shift(when, kind.strip())


def seconds_from(start: date, day: date) -> int:
    """Seconds from the start of ``start`` to the start of ``day``."""
    return (day - start).days * 86_400


def price_factor(shifts: Sequence[Shift], start: date, ts: np.ndarray) -> np.ndarray:
    """Per booking (``ts``: seconds after ``start``): the product of the price shifts in effect."""
    factor = np.ones(len(ts))
    for shift in shifts:
        if shift.kind == "price":
            factor[ts >= seconds_from(start, shift.date)] *= PRICE_FACTOR
    return factor


def direct_to_ota(
    shifts: Sequence[Shift], start: date, ts: np.ndarray, channel: np.ndarray, direct: int, ota: int
) -> np.ndarray:
    """Channel indices with the direct bookings made on or after a ``channel`` shift moved to ``ota``."""
    out = channel.copy()
    for shift in shifts:
        if shift.kind == "channel":
            out[(ts >= seconds_from(start, shift.date)) & (out == direct)] = ota
    return out


def churn_limits(
    rng: np.random.Generator,
    shifts: Sequence[Shift],
    start: date,
    repeat_person: np.ndarray,
    repeat_day: np.ndarray,
    dropout_after: np.ndarray,
) -> np.ndarray:
    """The number of repeat stays each guest may make before dropping out, under the ``churn`` shifts.

    ``dropout_after`` (K ~ Geometric(p)) is the unshifted number; ``repeat_person``/``repeat_day`` are
    the unshifted repeat stays (days after ``start``), in time order per guest. At a shift, a guest with
    ``k0 < K`` repeat stays before its date stops at ``k0`` with probability :data:`CHURN_WAVE` (one
    uniform per guest and shift from ``rng``), so the change shows within any horizon after the date.
    """
    limit = dropout_after.astype(np.int64)
    for shift in sorted(s for s in shifts if s.kind == "churn"):
        stops = rng.random(len(limit)) < CHURN_WAVE
        early = repeat_day < (shift.date - start).days
        k0 = np.bincount(repeat_person[early], minlength=len(limit))
        limit = np.where(stops & (k0 < limit), k0, limit)
    return limit
