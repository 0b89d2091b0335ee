"""Rank the offers for one booking, fast enough to answer a booking system while the clerk waits.

:class:`OfferRanker` is built once per offers catalogue and pair of acceptance models (the serving
snapshot and the champions): the catalogue's rule columns are prepared, each offer's model inputs
(offer and category codes, price, margin, unit) are encoded, and the models are compiled
(:mod:`.compiled`). A booking then costs a few small numpy steps: the eligibility rules, one matrix of
the allowed offers, one pass through the compiled trees, the top ``k`` by expected margin.

It scores exactly what the training path would (``AcceptanceModel.predict_proba`` on
``event_frame`` rows): tests compare the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.features.behaviour import column_suffix
from crm_analytics.models.offers.acceptance import CONTEXT_CATEGORIES, OWN_UPTAKE, AcceptanceModel
from crm_analytics.models.offers.eligibility import (
    CONTACT_CAP,
    BookingContext,
    GuestFacts,
    allowed,
    prepare_catalogue,
)
from crm_analytics.models.offers.policy import Units, reason

OFFER_INPUTS = ("offer_id", "category", "price", "margin")


@dataclass(frozen=True)
class RankedOffer:
    """One suggestion: P(accept), expected margin in this booking, why, and how likely the policy was to
    show it (for the offer log: off-policy evaluation weighs answers by 1 / propensity)."""

    offer_id: str
    name: str
    p_accept: float
    expected_value: float
    reason: str
    propensity: float


class _EncodedModel:
    """One acceptance model with the catalogue's offer columns encoded for it."""

    def __init__(self, model: AcceptanceModel, offers: pd.DataFrame) -> None:
        self.model = model
        self.forest = model.compiled()
        self.columns = model.matrix_columns
        self.offer_columns = {
            "offer_id": model.codes("offer_id", offers["offer_id"]),
            "category": model.codes("category", offers["category"]),
            "price": offers["price"].to_numpy(dtype=float, na_value=np.nan),
            "margin": offers["margin"].to_numpy(dtype=float, na_value=np.nan),
        }
        self.code_of = {
            c: {v: float(i) for i, v in enumerate(model.categories_[c])} for c in CONTEXT_CATEGORIES
        }
        # each offer's own-category uptake column in the guest's history (None when the model lacks it)
        history = set(model.customer_columns_)
        self.uptake_column = [
            column if (column := f"extras_rate_{column_suffix(str(c))}") in history else None
            for c in offers["category"]
        ]

    def code(self, column: str, value: Any) -> float:
        """A booking's category value as this model's code (NaN when unknown or missing)."""
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return np.nan
        return self.code_of[column].get(str(value), np.nan)

    def matrix(
        self, rows: np.ndarray, booking: BookingContext, lead_days: int, history: Mapping[str, float]
    ) -> np.ndarray:
        """The model's matrix for the catalogue rows ``rows`` in one booking."""
        numbers = {
            "nights": float(booking.nights),
            "guests": float(booking.guests),
            "lead_days": float(lead_days),
            "upgrade_available": float(bool(booking.upgrade_available)),
        }
        numbers |= {c: self.code(c, getattr(booking, c)) for c in CONTEXT_CATEGORIES if hasattr(booking, c)}
        out = np.empty((len(rows), len(self.columns)))
        for j, column in enumerate(self.columns):
            if column in self.offer_columns:
                out[:, j] = self.offer_columns[column][rows]
            elif column == OWN_UPTAKE:
                out[:, j] = [history.get(self.uptake_column[i] or "", np.nan) for i in rows]
            elif column in numbers:
                out[:, j] = numbers[column]
            else:
                out[:, j] = history.get(column, np.nan)
        return out


class OfferRanker:
    """The top offers for a booking from one catalogue and the full and context-only models."""

    def __init__(
        self,
        full: AcceptanceModel,
        context: AcceptanceModel,
        offers: pd.DataFrame,
        hotels: pd.DataFrame | None = None,
    ) -> None:
        missing = [c for c in (*OFFER_INPUTS, "name") if c not in offers.columns]
        if missing:
            raise ValueError(f"offers: missing column '{missing[0]}'")
        self.offers = offers.reset_index(drop=True)
        self.catalogue = prepare_catalogue(self.offers, hotels)  # hotels: facilities (see eligibility)
        units = self.offers["unit"] if "unit" in self.offers.columns else pd.Series([None] * len(self.offers))
        self.units = Units.of(units)
        self.full = _EncodedModel(full, self.offers)
        self.context = _EncodedModel(context, self.offers)
        self.ids = self.offers["offer_id"].astype(str).tolist()
        self.names = self.offers["name"].astype(str).tolist()
        self.categories = self.offers["category"].astype(str).tolist()

    def rank(
        self,
        booking: BookingContext,
        facts: GuestFacts,
        history: Mapping[str, Any] | None = None,
        shown_at: datetime | None = None,
        top_k: int = 3,
        contact_cap: int = CONTACT_CAP,
        explore: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> list[RankedOffer]:
        """The ``top_k`` eligible offers by expected margin (ties keep catalogue order). ``history`` is
        the guest's purchase-history columns; without any value the context-only model scores.

        With probability ``explore`` the list is instead ``top_k`` eligible offers drawn at random
        (shown best first), so the offer log keeps learning about offers the model would not pick;
        each offer's ``propensity`` is its probability of being in the list under this rule."""
        if not 0 <= explore < 1:
            raise ValueError(f"explore: must be in [0, 1), got {explore!r}")
        rows = np.flatnonzero(allowed(self.catalogue, booking, facts, contact_cap))
        if len(rows) == 0:
            return []
        known = {k: float(v) for k, v in (history or {}).items() if v is not None and v == v}  # not NaN
        encoded = self.full if known else self.context
        shown_day = (shown_at or datetime.now()).date()
        check_in = booking.check_in.date() if isinstance(booking.check_in, datetime) else booking.check_in
        lead_days = max((check_in - shown_day).days, 0)
        matrix = encoded.matrix(rows, booking, lead_days, known)
        p_accept = encoded.forest.predict_proba(matrix)
        quantity = self.units.quantities(np.array([booking.nights]), np.array([booking.guests]))[0, rows]
        expected = p_accept * self.full.offer_columns["margin"][rows] * quantity
        greedy = np.argsort(-expected, kind="stable")[:top_k]
        in_greedy = np.zeros(len(rows), dtype=bool)
        in_greedy[greedy] = True
        propensity = (1 - explore) * in_greedy + explore * len(greedy) / len(rows)
        order = greedy
        draws = rng or np.random.default_rng()
        if explore and draws.random() < explore:
            drawn = draws.choice(len(rows), size=len(greedy), replace=False)
            order = drawn[np.argsort(-expected[drawn], kind="stable")]
        guest = known or None
        return [
            RankedOffer(
                self.ids[rows[i]],
                self.names[rows[i]],
                float(p_accept[i]),
                float(expected[i]),
                reason(self.categories[rows[i]], guest, booking.purpose),
                float(propensity[i]),
            )
            for i in order
        ]
