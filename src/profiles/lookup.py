"""Find a unified customer from the details a booking desk has: e-mail, phone, or a name plus another
detail (birth date, postcode, street or city).

An exact e-mail or phone on record identifies the customer outright (confidence 1, as in linkage). A
name is scored against the stored records with the linkage model (Splink's, applied by
:class:`~crm_analytics.profiles.name_scorer.NameScorer`), so a typo or a missing
detail lowers the confidence instead of failing the lookup; matches below ``min_confidence`` (default:
the threshold the profiles were built with) are not returned. Load a :class:`ProfileIndex` once and
reuse it: the booking-time API keeps one in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crm_analytics.profiles.name_scorer import NameScorer
from crm_analytics.profiles.records import (
    MATCH_COLUMNS,
    fold_text,
    normalise_email,
    normalise_phone,
    normalise_postcode,
)
from crm_analytics.profiles.tables import MODEL, RECORDS
from crm_analytics.warehouse import Warehouse

NAME_DETAILS = ("birth_date", "postcode", "street", "city")
LOOKUP_BLOCKS = (  # candidates share one of these pairs exactly: a typo in either name still finds them
    ("first_name", "last_name"),
    ("last_name", "postcode"),
    ("last_name", "birth_date"),
    ("last_name", "city"),
    ("first_name", "postcode"),
    ("first_name", "birth_date"),
)


@dataclass(frozen=True)
class Match:
    """A candidate customer for the details given."""

    customer_id: str
    confidence: float
    matched_by: str  # email | phone | name


def query_record(details: dict[str, Any], country: str | None = None) -> dict[str, Any]:
    """The details normalised like stored records, a national phone number read in ``country`` (ISO
    3166 alpha-2, e.g. the hotel's); raises a ValueError naming what is missing."""
    unknown = set(details) - {"email", "phone", "first_name", "last_name", *NAME_DETAILS}
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: not a lookup detail")
    birth = details.get("birth_date")
    record = {
        "email": normalise_email(details.get("email")),
        "phone": normalise_phone(details.get("phone"), country),
        "first_name": fold_text(details.get("first_name")),
        "last_name": fold_text(details.get("last_name")),
        "birth_date": pd.Timestamp(birth).strftime("%Y-%m-%d") if birth else None,
        "postcode": normalise_postcode(details.get("postcode")),
        "street": fold_text(details.get("street")),
        "city": fold_text(details.get("city")),
        "loyalty_id": None,
    }
    named = record["first_name"] and record["last_name"]
    other = any(record[k] for k in NAME_DETAILS)
    if not (record["email"] or record["phone"] or (named and other)):
        raise ValueError(
            "details: give an e-mail, a phone, or first_name and last_name plus one of "
            + ", ".join(NAME_DETAILS)
        )
    return record


class ProfileIndex:
    """The stored records and linkage model, loaded once for repeated lookups."""

    def __init__(self, records: pd.DataFrame, model: dict[str, Any], min_confidence: float) -> None:
        self.min_confidence = min_confidence
        self._by_email = records.dropna(subset=["email"]).groupby("email")["customer_id"].agg(set)
        self._by_phone = records.dropna(subset=["phone"]).groupby("phone")["customer_id"].agg(set)
        self._customer = records.set_index("unique_id")["customer_id"]
        self._names = NameScorer(records, model, MATCH_COLUMNS, LOOKUP_BLOCKS)

    @classmethod
    def load(cls, warehouse: Warehouse, min_confidence: float | None = None) -> ProfileIndex:
        """The index of the warehouse's latest profile build; a LookupError before the first build."""
        if not warehouse.has_table(MODEL) or warehouse.count(MODEL) == 0:
            raise LookupError("profiles: not built yet; run `crm profiles build` first")
        model_row = warehouse.ibis.table(MODEL).execute().iloc[-1]
        records = warehouse.ibis.table(RECORDS).execute()
        threshold = float(model_row["threshold"]) if min_confidence is None else min_confidence
        return cls(records, json.loads(model_row["settings_json"]), threshold)

    def lookup(self, details: dict[str, Any], limit: int = 3, country: str | None = None) -> list[Match]:
        """Candidate customers for ``details``, most confident first, at most ``limit`` (``country``: where
        a national phone number was written)."""
        record = query_record(details, country)
        exact = [
            Match(customer_id, 1.0, key)
            for key, index in (("email", self._by_email), ("phone", self._by_phone))
            if record[key]
            for customer_id in sorted(index.get(record[key], set()))
        ]
        found = {m.customer_id: m for m in reversed(exact)}
        if record["first_name"] and record["last_name"]:
            for match in self._score_name(record):
                found.setdefault(match.customer_id, match)
        ranked = sorted(found.values(), key=lambda m: (-m.confidence, m.customer_id))
        return [m for m in ranked if m.confidence >= self.min_confidence][:limit]

    def _score_name(self, record: dict[str, Any]) -> list[Match]:
        """The linkage model's probability that the query is each blocked stored record's person."""
        scored = self._names.score(record)
        best: dict[str, float] = {}
        for unique_id, probability in scored.items():
            customer_id = str(self._customer[unique_id])
            best[customer_id] = max(best.get(customer_id, 0.0), probability)
        return [Match(c, p, "name") for c, p in best.items()]
