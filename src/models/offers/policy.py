"""The next-best-offer policy: eligible offers ranked by expected margin = P(accept) x margin x quantity.

A price and margin are per unit (``stay``, ``night``, ``guest``, ``guest_night``; missing = stay), so an
offer's value in a booking is its margin times the quantity the booking implies. Each suggestion
carries a short reason drawn from the guest's own history where there is one ("took breakfast on 4 of
5 stays"), from the booking otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analytics.features.behaviour import column_suffix
from crm_analytics.models.offers.acceptance import AcceptanceModel, event_frame
from crm_analytics.models.offers.eligibility import BookingContext, GuestFacts, eligible

UNITS = ("stay", "night", "guest", "guest_night")


def quantities(units: pd.Series, nights: np.ndarray, guests: np.ndarray) -> np.ndarray:
    """(events x offers) quantity of each offer in each booking, by the offer's unit."""
    unit = units.fillna("stay").to_numpy(dtype=str)
    unknown = sorted(set(unit) - set(UNITS))
    if unknown:
        raise ValueError(f"unit: expected one of {', '.join(UNITS)}, got {unknown[0]!r}")
    n = np.asarray(nights, dtype=float)[:, None]
    g = np.asarray(guests, dtype=float)[:, None]
    per_night = np.isin(unit, ("night", "guest_night"))[None, :]
    per_guest = np.isin(unit, ("guest", "guest_night"))[None, :]
    return np.where(per_night, n, 1.0) * np.where(per_guest, g, 1.0)


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


def reason(category: str, customer: pd.Series | None, purpose: str | None) -> str:
    """Why this offer: the guest's own uptake of the category when known, else the booking's purpose."""
    if customer is not None:
        rate = customer.get(f"extras_rate_{column_suffix(category)}")
        frequency = customer.get("frequency")
        stays = int(frequency) + 1 if frequency is not None and pd.notna(frequency) else 0
        if rate is not None and pd.notna(rate) and rate > 0 and stays:
            return f"took {category.replace('_', ' ')} on {round(rate * stays)} of {stays} stays"
    label = f"{purpose} guests" if purpose else "guests"
    return f"often taken by {label} on similar bookings"


def rank_offers(
    model: AcceptanceModel,
    offers: pd.DataFrame,
    context: BookingContext,
    facts: GuestFacts,
    customer: pd.Series | None = None,
    shown_at: pd.Timestamp | None = None,
    top_k: int = 3,
) -> pd.DataFrame:
    """The top ``top_k`` eligible offers for one booking: offer_id, name, p_accept, expected_value, reason.

    ``model`` must match the guest: the full model with ``customer`` (their feature row), the
    context-only model for an unknown guest (``customer`` None).
    """
    verdicts = eligible(offers, context, facts)
    allowed = verdicts[verdicts["eligible"]]
    if allowed.empty:
        return pd.DataFrame(columns=["offer_id", "name", "p_accept", "expected_value", "reason"])
    when = shown_at if shown_at is not None else pd.Timestamp.now()
    events = pd.DataFrame(
        {
            "offer_id": allowed["offer_id"].to_numpy(),
            "shown_at": when,
            "check_in": pd.Timestamp(context.check_in),
            "hotel_id": context.hotel_id,
            "room_type": context.room_type,
            "nights": context.nights,
            "guests": context.guests,
            "channel": context.channel,
            "purpose": context.purpose,
            "upgrade_available": context.upgrade_available,
        }
    )
    frame = event_frame(events, offers)
    if customer is not None:
        frame = frame.assign(**{c: customer.get(c, np.nan) for c in model.customer_columns_})
    p_accept = model.predict_proba(frame)
    margin = margins(allowed, np.array([context.nights]), np.array([context.guests]))[0]
    ranked = pd.DataFrame(
        {
            "offer_id": allowed["offer_id"].to_numpy(),
            "name": allowed["name"].to_numpy(),
            "p_accept": p_accept,
            "expected_value": p_accept * margin,
            "reason": [reason(c, customer, context.purpose) for c in allowed["category"]],
        }
    )
    return (
        ranked.sort_values("expected_value", ascending=False, kind="stable")
        .head(top_k)
        .reset_index(drop=True)
    )
