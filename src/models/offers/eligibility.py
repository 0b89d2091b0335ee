"""Which offers may be shown for a booking: explicit, named rules over the offers catalogue.

Each rule in :data:`RULES` is data: a name, a description and a function vectorised over the catalogue
and over booking events, ``(offers, contexts, guests) -> bool`` of shape ``(n_events, n_offers)`` (True =
allowed). :func:`eligible` (one booking, for the booking API) and :func:`eligibility_matrix` (many logged
events, for offline evaluation) run the same rules; they differ only in how their inputs arrive.
Data conventions:

* catalogue columns as in :class:`crm_analytics.ingest.contracts.Offers`; ``hotel_ids`` and ``room_types``
  are ``;``-separated lists where null (or blank) means every hotel / any room type;
* null flags (``carpeted``, ``hypoallergenic``, ``upgrade_available``, ``has_allergy``) are False;
  null ``min_nights`` is 1; null ``nights`` is 0; a null count of offers shown is 0;
* ``valid_from`` / ``valid_until`` (dates, optional, null = open) bound the nights of the stay: the
  first night (check-in day) is on or after ``valid_from``, the last night on or before ``valid_until``;
* hotel facilities are not in the warehouse, so ``requires_spa/parking/airport`` are not read:
  ``hotel_ids`` must already list only hotels that can sell the offer (the demo catalogue does);
* ``category`` "upgrade" ignores case and spaces; ids match exactly; unknown bought ids are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

CONTACT_CAP = 3  # offers a guest may be shown per CONTACT_WINDOW_DAYS (the caller counts them)
CONTACT_WINDOW_DAYS = 30
OFFER_FLAGS = ("carpeted", "hypoallergenic")
OFFER_COLUMNS = ("offer_id", "category", "hotel_ids", "room_types", "min_nights", *OFFER_FLAGS)
OFFER_DATES = ("valid_from", "valid_until")  # optional: a catalogue without them has no date limits
FACT_COLUMNS = ("has_allergy", "bought_this_stay", "offers_shown_recently")


@dataclass(frozen=True)
class BookingContext:
    """The booking an offer would be shown for."""

    hotel_id: str
    check_in: date
    nights: int
    guests: int
    room_type: str
    channel: str
    purpose: str  # "business" or "leisure"
    upgrade_available: bool


CONTEXT_COLUMNS = tuple(f.name for f in fields(BookingContext))


@dataclass(frozen=True)
class GuestFacts:
    """What is on record about the guest; an unknown guest is ``GuestFacts()``."""

    allergies: tuple[str, ...] = ()  # any entry counts as an allergy on record
    accessibility_needs: tuple[str, ...] = ()
    room_preferences: tuple[str, ...] = ()
    bought_this_stay: frozenset[str] = field(default_factory=frozenset)  # offer ids bought for this booking
    offers_shown_recently: int = 0  # offers shown to the guest in the last CONTACT_WINDOW_DAYS


@dataclass(frozen=True)
class GuestColumns:
    """Guest facts as columns, one entry per event, as rules receive them."""

    has_allergy: np.ndarray  # (n_events,) bool
    bought: np.ndarray  # (n_events, n_offers) bool, aligned with the catalogue rows
    shown_recently: np.ndarray  # (n_events,) int
    contact_cap: int


RuleFunction = Callable[[pd.DataFrame, pd.DataFrame, GuestColumns], np.ndarray]


class Rule(NamedTuple):
    """A named eligibility rule; ``function`` returns True where an offer is allowed."""

    name: str
    description: str
    function: RuleFunction


def _split(value: Any) -> frozenset[str] | None:
    """Items of a ``;``-separated list; None for a null or blank list (no restriction)."""
    if not isinstance(value, str) and pd.isna(value):
        return None
    items = frozenset(part.strip() for part in str(value).split(";") if part.strip())
    return items or None


def _listed(lists: pd.Series, values: pd.Series) -> np.ndarray:
    """(n_events, n_offers): each event's value is in each offer's list, or the list is null."""
    sets = [_split(v) for v in lists]
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    table = [[s is None or str(u).strip() in s for s in sets] for u in uniques]
    table.append([s is None for s in sets])  # code -1: the event's value is null
    return np.array(table, dtype=bool).reshape(len(table), len(sets))[codes]


def _flag(column: pd.Series) -> np.ndarray:
    """Boolean column with nulls as False."""
    if column.dtype == bool:
        return column.to_numpy()
    return column.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _is_upgrade(offers: pd.DataFrame) -> np.ndarray:
    return np.array([str(c).strip().lower() == "upgrade" for c in offers["category"]], dtype=bool)


def _hotel(offers: pd.DataFrame, contexts: pd.DataFrame, guests: GuestColumns) -> np.ndarray:
    return _listed(offers["hotel_ids"], contexts["hotel_id"])


def _room_type(offers: pd.DataFrame, contexts: pd.DataFrame, guests: GuestColumns) -> np.ndarray:
    return _listed(offers["room_types"], contexts["room_type"])


def _min_nights(offers: pd.DataFrame, contexts: pd.DataFrame, guests: GuestColumns) -> np.ndarray:
    return contexts["nights"].to_numpy()[:, None] >= offers["min_nights"].to_numpy()[None, :]


def _dates(offers: pd.DataFrame, contexts: pd.DataFrame, guests: GuestColumns) -> np.ndarray:
    first_night = contexts["check_in"].to_numpy()[:, None]
    stay = np.maximum(contexts["nights"].to_numpy() - 1, 0).astype("timedelta64[D]")
    last_night = first_night + stay[:, None]
    starts, ends = offers["valid_from"].to_numpy()[None, :], offers["valid_until"].to_numpy()[None, :]
    return (np.isnat(starts) | (first_night >= starts)) & (np.isnat(ends) | (last_night <= ends))


def _upgrade_available(offers: pd.DataFrame, contexts: pd.DataFrame, guests: GuestColumns) -> np.ndarray:
    return contexts["upgrade_available"].to_numpy(dtype=bool)[:, None] | ~_is_upgrade(offers)[None, :]


def _not_already_bought(offers: pd.DataFrame, contexts: pd.DataFrame, guests: GuestColumns) -> np.ndarray:
    upgrade = _is_upgrade(offers)
    upgraded = np.asarray(guests.bought[:, upgrade].any(axis=1), dtype=bool)
    return ~guests.bought & ~(upgraded[:, None] & upgrade[None, :])


def _allergy(offers: pd.DataFrame, contexts: pd.DataFrame, guests: GuestColumns) -> np.ndarray:
    hypoallergenic = offers["hypoallergenic"].to_numpy(dtype=bool)
    risky = offers["carpeted"].to_numpy(dtype=bool) | (_is_upgrade(offers) & ~hypoallergenic)
    return ~(guests.has_allergy[:, None] & risky[None, :])


def _contact_cap(offers: pd.DataFrame, contexts: pd.DataFrame, guests: GuestColumns) -> np.ndarray:
    below = guests.shown_recently < guests.contact_cap
    return np.broadcast_to(below[:, None], (len(contexts), len(offers)))


RULES: tuple[Rule, ...] = (
    Rule("hotel", "sold at the booking's hotel (hotel_ids null or lists it)", _hotel),
    Rule("room_type", "applies to the booked room type (room_types null or lists it)", _room_type),
    Rule("min_nights", "the stay is at least min_nights long", _min_nights),
    Rule("dates", "every night of the stay lies within valid_from..valid_until (null = open)", _dates),
    Rule("upgrade_available", "an upgrade only when the hotel has one available", _upgrade_available),
    Rule("not_already_bought", "not bought for this stay yet; one upgrade per stay", _not_already_bought),
    Rule("allergy", "allergy on record: no carpeted offer, only hypoallergenic upgrades", _allergy),
    Rule(
        "contact_cap",
        f"no offer once the guest was shown contact_cap (default {CONTACT_CAP}) offers "
        f"in the last {CONTACT_WINDOW_DAYS} days",
        _contact_cap,
    ),
)


def rules_table() -> pd.DataFrame:
    """The rules in the order they are applied, as a name/description table."""
    return pd.DataFrame({"name": [r.name for r in RULES], "description": [r.description for r in RULES]})


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise ValueError(f"{what}: missing column '{column}'")


def _catalogue(offers: pd.DataFrame) -> pd.DataFrame:
    """The catalogue columns the rules read, with nulls resolved and a 0..n-1 index."""
    _require(offers, OFFER_COLUMNS, "offers")
    columns = {c: offers[c].to_numpy() for c in OFFER_COLUMNS}
    columns["min_nights"] = pd.to_numeric(offers["min_nights"]).fillna(1).to_numpy(dtype=np.int64)
    columns.update({flag: _flag(offers[flag]) for flag in OFFER_FLAGS})
    for name in OFFER_DATES:
        given = offers[name] if name in offers.columns else pd.Series(pd.NaT, index=offers.index)
        columns[name] = _days(given)
    return pd.DataFrame(columns)


def _days(values: pd.Series) -> np.ndarray:
    """Dates or timestamps as ``datetime64[D]``; nulls as NaT."""
    return pd.to_datetime(values).to_numpy().astype("datetime64[D]")


def _ids(value: Any) -> set[str]:
    """Offer ids from a list/tuple/set/array or a ``;``-separated string; null means none."""
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return {str(v).strip() for v in value}
    return set(_split(value) or ())


def _guest_columns(facts: pd.DataFrame, offer_ids: pd.Series, contact_cap: int) -> GuestColumns:
    position: dict[str, list[int]] = {}
    for i, offer_id in enumerate(offer_ids.astype(str)):
        position.setdefault(offer_id, []).append(i)
    bought = np.zeros((len(facts), len(offer_ids)), dtype=bool)
    for row, value in enumerate(facts["bought_this_stay"]):
        for offer_id in _ids(value):
            bought[row, position.get(offer_id, [])] = True
    shown = pd.to_numeric(facts["offers_shown_recently"]).fillna(0).to_numpy(dtype=np.int64)
    return GuestColumns(_flag(facts["has_allergy"]), bought, shown, contact_cap)


def _verdicts(offers: pd.DataFrame, contexts: pd.DataFrame, facts: pd.DataFrame, cap: int) -> np.ndarray:
    """(n_rules, n_events, n_offers) bool: each rule's verdict, in the order of :data:`RULES`."""
    if isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap < 0:
        raise ValueError(f"contact_cap: must be a non-negative integer, got {cap!r}")
    catalogue = _catalogue(offers)
    _require(contexts, CONTEXT_COLUMNS, "contexts")
    _require(facts, FACT_COLUMNS, "facts")
    if len(facts) != len(contexts):
        raise ValueError(f"facts: {len(facts)} rows for {len(contexts)} contexts")
    columns = {c: contexts[c].to_numpy() for c in CONTEXT_COLUMNS}
    columns["nights"] = pd.to_numeric(contexts["nights"]).fillna(0).to_numpy(dtype=np.int64)
    columns["upgrade_available"] = _flag(contexts["upgrade_available"])
    columns["check_in"] = _days(contexts["check_in"])
    ctx = pd.DataFrame(columns)
    guests = _guest_columns(facts, catalogue["offer_id"], int(cap))
    shape = (len(ctx), len(catalogue))
    out = np.ones((len(RULES), *shape), dtype=bool)
    for i, rule in enumerate(RULES):
        out[i] = np.broadcast_to(np.asarray(rule.function(catalogue, ctx, guests), dtype=bool), shape)
    return out


def eligibility_matrix(
    offers: pd.DataFrame, contexts: pd.DataFrame, facts: pd.DataFrame, contact_cap: int = CONTACT_CAP
) -> np.ndarray:
    """(n_events, n_offers) bool: which catalogue rows every rule allows for each logged event.

    ``contexts`` has the :class:`BookingContext` fields as columns; ``facts`` (row-aligned by position)
    has ``has_allergy`` (bool), ``bought_this_stay`` (list/tuple or ``;``-string of offer ids) and
    ``offers_shown_recently`` (int).
    """
    return np.asarray(_verdicts(offers, contexts, facts, contact_cap).all(axis=0), dtype=bool)


def eligible(
    offers: pd.DataFrame, context: BookingContext, facts: GuestFacts, contact_cap: int = CONTACT_CAP
) -> pd.DataFrame:
    """The catalogue with ``eligible`` (bool) and ``excluded_by`` (first excluding rule, None if eligible)."""
    facts_row = {
        "has_allergy": bool(facts.allergies),
        "bought_this_stay": tuple(sorted(facts.bought_this_stay)),
        "offers_shown_recently": facts.offers_shown_recently,
    }
    context_row = {c: [getattr(context, c)] for c in CONTEXT_COLUMNS}
    verdicts = _verdicts(offers, pd.DataFrame(context_row), pd.DataFrame([facts_row]), contact_cap)
    failed = ~verdicts[:, 0, :].T  # (n_offers, n_rules)
    first = [next((r.name for r, f in zip(RULES, row, strict=True) if f), None) for row in failed]
    out = offers.copy()
    out["eligible"] = np.array([name is None for name in first], dtype=bool)
    out["excluded_by"] = pd.Series(first, index=out.index, dtype=object)
    return out
