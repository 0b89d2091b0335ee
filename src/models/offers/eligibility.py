"""Which offers may be shown for a booking: explicit, named rules over the offers catalogue.

Each rule in :data:`RULES` is data: a name, a description and a function vectorised over the catalogue
and over booking events, ``(catalogue, contexts, guests) -> bool`` of shape ``(n_events, n_offers)``
(True = allowed). The catalogue is prepared once (:func:`prepare_catalogue`: nulls resolved, lists
parsed), so the booking API's :func:`allowed` costs microseconds; :func:`eligible` (one booking, with the
excluding rule) and :func:`eligibility_matrix` (many logged events, for offline evaluation) run the same
rules; they differ only in how their inputs arrive.
Data conventions:

* catalogue columns as in :class:`crm_analytics.ingest.contracts.Offers`; ``hotel_ids`` and ``room_types``
  are ``;``-separated lists where null (or blank) means every hotel / any room type;
* null flags (``carpeted``, ``hypoallergenic``, ``upgrade_available``, ``has_allergy``) are False;
  null ``min_nights`` is 1; null ``nights`` is 0; a null count of offers shown is 0;
* ``valid_from`` / ``valid_until`` (dates, optional, null = open) bound the nights of the stay: the
  first night (check-in day) is on or after ``valid_from``, the last night on or before ``valid_until``;
* ``requires_spa/parking/airport`` (null = False; columns optional) need the facilities ``spa``,
  ``parking`` and ``airport_transfer`` of the booking's hotel in the hotels catalogue
  (:class:`crm_analytics.ingest.contracts.Hotels`); a hotel missing from it, or no catalogue at all,
  has no facilities, so an offer needing one is never shown there;
* ``category`` "upgrade" ignores case and spaces; ids match exactly; unknown bought ids are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
# offer flag -> the hotel facility (hotels contract) it needs
REQUIRED_FACILITIES = {
    "requires_spa": "spa",
    "requires_parking": "parking",
    "requires_airport": "airport_transfer",
}


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


Columns = Mapping[str, np.ndarray]  # equal-length numpy columns by name
RuleFunction = Callable[[Columns, Columns, GuestColumns], np.ndarray]


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


def _listed(sets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(n_events, n_offers): each event's value is in each offer's list (a parsed set), or the list is
    null (None)."""
    uniques: dict[Any, int] = {}
    codes = [-1 if _is_null(v) else uniques.setdefault(v, len(uniques)) for v in values.tolist()]
    table = [[s is None or str(u).strip() in s for s in sets] for u in uniques]
    table.append([s is None for s in sets])  # code -1: the event's value is null
    return np.array(table, dtype=bool).reshape(len(table), len(sets))[codes]


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _flag(column: pd.Series) -> np.ndarray:
    """Boolean column with nulls as False."""
    if column.dtype == bool:
        return column.to_numpy()
    return column.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _hotel(offers: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    return _listed(offers["hotel_sets"], contexts["hotel_id"])


def _facilities(offers: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    row = {hotel: i for i, hotel in enumerate(offers["facility_hotels"].tolist())}
    unknown = len(row)  # the last row of facility_ok: a hotel without facilities
    codes = [row.get(h, unknown) if isinstance(h, str) else unknown for h in contexts["hotel_id"].tolist()]
    return np.asarray(offers["facility_ok"][codes], dtype=bool)


def _room_type(offers: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    return _listed(offers["room_type_sets"], contexts["room_type"])


def _min_nights(offers: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    return contexts["nights"][:, None] >= offers["min_nights"][None, :]


def _dates(offers: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    first_night = contexts["check_in"][:, None]
    stay = np.maximum(contexts["nights"] - 1, 0).astype("timedelta64[D]")
    last_night = first_night + stay[:, None]
    starts, ends = offers["valid_from"][None, :], offers["valid_until"][None, :]
    return (np.isnat(starts) | (first_night >= starts)) & (np.isnat(ends) | (last_night <= ends))


def _upgrade_available(offers: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    return contexts["upgrade_available"][:, None] | ~offers["is_upgrade"][None, :]


def _not_already_bought(offers: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    upgrade = offers["is_upgrade"]
    upgraded = np.asarray(guests.bought[:, upgrade].any(axis=1), dtype=bool)
    return ~guests.bought & ~(upgraded[:, None] & upgrade[None, :])


def _allergy(offers: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    risky = offers["carpeted"] | (offers["is_upgrade"] & ~offers["hypoallergenic"])
    return ~(guests.has_allergy[:, None] & risky[None, :])


def _contact_cap(offers: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    below = guests.shown_recently < guests.contact_cap
    return np.broadcast_to(below[:, None], (len(below), len(offers["offer_id"])))


RULES: tuple[Rule, ...] = (
    Rule("hotel", "sold at the booking's hotel (hotel_ids null or lists it)", _hotel),
    Rule(
        "facilities",
        "the hotel has what the offer requires (requires_spa/parking/airport: spa, parking, "
        "airport_transfer in the hotels catalogue)",
        _facilities,
    ),
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


def prepare_catalogue(offers: pd.DataFrame, hotels: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
    """The catalogue columns the rules read, nulls resolved and lists parsed: prepare once, reuse for
    every booking (:func:`allowed`). ``hotels`` (``hotel_id``, ``facilities``) says which hotel can sell
    an offer that requires a facility; without it no hotel can."""
    _require(offers, OFFER_COLUMNS, "offers")
    columns = {c: offers[c].to_numpy() for c in OFFER_COLUMNS}
    columns["min_nights"] = pd.to_numeric(offers["min_nights"]).fillna(1).to_numpy(dtype=np.int64)
    columns.update({flag: _flag(offers[flag]) for flag in OFFER_FLAGS})
    for name in OFFER_DATES:
        given = offers[name] if name in offers.columns else pd.Series(pd.NaT, index=offers.index)
        columns[name] = _days(given)
    columns["hotel_sets"] = _sets(offers["hotel_ids"])
    columns["room_type_sets"] = _sets(offers["room_types"])
    columns["is_upgrade"] = np.array([str(c).strip().lower() == "upgrade" for c in offers["category"]], bool)
    columns.update(_facility_columns(offers, hotels))
    return columns


def _facility_columns(offers: pd.DataFrame, hotels: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """``facility_hotels`` (the catalogue's hotel ids) and ``facility_ok``, (n_hotels + 1, n_offers):
    whether each hotel, then a hotel without facilities, has every facility each offer requires."""
    hotels = hotels if hotels is not None else pd.DataFrame({"hotel_id": [], "facilities": []})
    _require(hotels, ("hotel_id", "facilities"), "hotels")
    needs = [
        {facility for flag, facility in REQUIRED_FACILITIES.items() if flag in offers.columns and row[flag]}
        for row in pd.DataFrame({f: _flag(offers[f]) for f in REQUIRED_FACILITIES if f in offers.columns})
        .reindex(offers.index)
        .fillna(False)
        .to_dict("records")
    ]
    has = [_split(value) or frozenset() for value in hotels["facilities"]] + [frozenset()]
    ok = np.array([[need <= facilities for need in needs] for facilities in has], dtype=bool)
    return {
        "facility_hotels": hotels["hotel_id"].astype(str).to_numpy(dtype=object),
        "facility_ok": ok.reshape(len(has), len(needs)),
    }


def _sets(lists: pd.Series) -> np.ndarray:
    out = np.empty(len(lists), dtype=object)
    out[:] = [_split(v) for v in lists]
    return out


def _days(values: pd.Series) -> np.ndarray:
    """Dates or timestamps as ``datetime64[D]``; nulls as NaT."""
    return pd.to_datetime(values).to_numpy().astype("datetime64[D]")


def _ids(value: Any) -> set[str]:
    """Offer ids from a list/tuple/set/array or a ``;``-separated string; null means none."""
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return {str(v).strip() for v in value}
    return set(_split(value) or ())


def _guest_columns(facts: pd.DataFrame, offer_ids: np.ndarray, contact_cap: int) -> GuestColumns:
    position: dict[str, list[int]] = {}
    for i, offer_id in enumerate(offer_ids.astype(str)):
        position.setdefault(offer_id, []).append(i)
    bought = np.zeros((len(facts), len(offer_ids)), dtype=bool)
    for row, value in enumerate(facts["bought_this_stay"]):
        for offer_id in _ids(value):
            bought[row, position.get(offer_id, [])] = True
    shown = pd.to_numeric(facts["offers_shown_recently"]).fillna(0).to_numpy(dtype=np.int64)
    return GuestColumns(_flag(facts["has_allergy"]), bought, shown, contact_cap)


def _check_cap(cap: int) -> None:
    if isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap < 0:
        raise ValueError(f"contact_cap: must be a non-negative integer, got {cap!r}")


def _verdicts(catalogue: Columns, contexts: Columns, guests: GuestColumns) -> np.ndarray:
    """(n_rules, n_events, n_offers) bool: each rule's verdict, in the order of :data:`RULES`."""
    shape = (len(guests.shown_recently), len(catalogue["offer_id"]))
    out = np.ones((len(RULES), *shape), dtype=bool)
    for i, rule in enumerate(RULES):
        out[i] = rule.function(catalogue, contexts, guests)  # (1, n_offers) answers broadcast
    return out


def _logged_verdicts(
    offers: pd.DataFrame, contexts: pd.DataFrame, facts: pd.DataFrame, cap: int, hotels: pd.DataFrame | None
) -> np.ndarray:
    """:func:`_verdicts` for events given as frames (contexts and facts row-aligned)."""
    _check_cap(cap)
    catalogue = prepare_catalogue(offers, hotels)
    _require(contexts, CONTEXT_COLUMNS, "contexts")
    _require(facts, FACT_COLUMNS, "facts")
    if len(facts) != len(contexts):
        raise ValueError(f"facts: {len(facts)} rows for {len(contexts)} contexts")
    columns = {c: contexts[c].to_numpy() for c in CONTEXT_COLUMNS}
    columns["nights"] = pd.to_numeric(contexts["nights"]).fillna(0).to_numpy(dtype=np.int64)
    columns["upgrade_available"] = _flag(contexts["upgrade_available"])
    columns["check_in"] = _days(contexts["check_in"])
    guests = _guest_columns(facts, catalogue["offer_id"], int(cap))
    return _verdicts(catalogue, columns, guests)


def _booking_verdicts(catalogue: Columns, context: BookingContext, facts: GuestFacts, cap: int) -> np.ndarray:
    """:func:`_verdicts` for one booking, without building frames."""
    _check_cap(cap)
    columns = {c: np.array([getattr(context, c)], dtype=object) for c in CONTEXT_COLUMNS}
    columns["nights"] = np.array([context.nights or 0], dtype=np.int64)
    columns["upgrade_available"] = np.array([bool(context.upgrade_available)])
    columns["check_in"] = np.array([context.check_in], dtype="datetime64[D]")
    bought_ids = {str(i).strip() for i in facts.bought_this_stay}
    bought = np.array([[str(o) in bought_ids for o in catalogue["offer_id"].tolist()]], dtype=bool)
    guests = GuestColumns(
        np.array([bool(facts.allergies)]), bought, np.array([facts.offers_shown_recently or 0]), int(cap)
    )
    return _verdicts(catalogue, columns, guests)


def eligibility_matrix(
    offers: pd.DataFrame,
    contexts: pd.DataFrame,
    facts: pd.DataFrame,
    contact_cap: int = CONTACT_CAP,
    hotels: pd.DataFrame | None = None,
) -> np.ndarray:
    """(n_events, n_offers) bool: which catalogue rows every rule allows for each logged event.

    ``contexts`` has the :class:`BookingContext` fields as columns; ``facts`` (row-aligned by position)
    has ``has_allergy`` (bool), ``bought_this_stay`` (list/tuple or ``;``-string of offer ids) and
    ``offers_shown_recently`` (int); ``hotels`` is the hotels catalogue (facilities).
    """
    return np.asarray(_logged_verdicts(offers, contexts, facts, contact_cap, hotels).all(axis=0), dtype=bool)


def eligible(
    offers: pd.DataFrame,
    context: BookingContext,
    facts: GuestFacts,
    contact_cap: int = CONTACT_CAP,
    hotels: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The catalogue with ``eligible`` (bool) and ``excluded_by`` (first excluding rule, None if eligible);
    ``hotels`` is the hotels catalogue (facilities)."""
    verdicts = _booking_verdicts(prepare_catalogue(offers, hotels), context, facts, contact_cap)
    failed = ~verdicts[:, 0, :].T  # (n_offers, n_rules)
    first = [next((r.name for r, f in zip(RULES, row, strict=True) if f), None) for row in failed]
    out = offers.copy()
    out["eligible"] = np.array([name is None for name in first], dtype=bool)
    out["excluded_by"] = pd.Series(first, index=out.index, dtype=object)
    return out


def allowed(
    catalogue: Columns, context: BookingContext, facts: GuestFacts, contact_cap: int = CONTACT_CAP
) -> np.ndarray:
    """(n_offers,) bool: the offers of a :func:`prepare_catalogue` catalogue every rule allows."""
    return np.asarray(_booking_verdicts(catalogue, context, facts, contact_cap)[:, 0, :].all(axis=0))
