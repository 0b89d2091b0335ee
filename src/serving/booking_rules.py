"""What a booking context is checked against: the served hotels catalogue and today's check-in window.

The request models (``schemas.Booking``) validate hotel, room type and check-in against the rules of
the app that received the request, which :class:`BookingRulesMiddleware` puts in a context variable for
the request's task (pydantic validators cannot see the request). The rules come from the active
snapshot's hotels catalogue (``crm score`` copies it from the warehouse): loaded at start-up and again
when the snapshot changes. Before the first snapshot there is no catalogue and any hotel id passes
(``/v1/offers`` answers 503 then anyway). The OpenAPI document lists the catalogue's hotel ids and
room types as enums (see ``schemas.Booking``), rendered with the same rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from crm_analytics.store import ServingStore

CHECKIN_GRACE_DAYS = 1  # a check-in may be yesterday: the hotel's local date can be behind UTC's
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
EARLIEST_BIRTH = date(1900, 1, 1)
TIME_RANGE = f"From {EARLIEST.date()} to before {LATEST.date()} (UTC when no offset is given)."
BIRTH_RANGE = f"From {EARLIEST_BIRTH} to before {LATEST.date()}."


def sane_time(value: datetime) -> datetime:
    """Every time the API takes lies in [2000-01-01, 2100-01-01) (no offset: UTC). The year is checked
    first, so an extreme offset such as year 1 at +14:00 is refused before arithmetic could overflow."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST.year - 1 <= value.year < LATEST.year or not EARLIEST <= aware < LATEST:
        raise ValueError(f"must lie from {EARLIEST.date()} to before {LATEST.date()}")
    return value


def sane_birth_date(value: date) -> date:
    if not EARLIEST_BIRTH <= value < LATEST.date():
        raise ValueError(f"must lie from {EARLIEST_BIRTH} to before {LATEST.date()}")
    return value


@dataclass(frozen=True)
class Hotel:
    """What a booking at one hotel is checked against, and where its desk is."""

    hotel_id: str
    country: str | None  # ISO 3166 alpha-2: the region of phone numbers typed at its desk
    room_types: frozenset[str]


@dataclass(frozen=True)
class BookingRules:
    """The hotels catalogue (empty: not known yet, nothing checked) and the check-in window in days."""

    hotels: dict[str, Hotel] = field(default_factory=dict)
    checkin_window_days: int = 550
    snapshot_id: str | None = None  # the snapshot the catalogue was read from

    @classmethod
    def of(cls, rows: list[dict[str, Any]], window_days: int, snapshot_id: str | None) -> BookingRules:
        """Rules from the hotels catalogue's rows (``hotels`` contract columns)."""
        hotels = {
            str(row["hotel_id"]): Hotel(
                str(row["hotel_id"]),
                str(row["country"]) if row.get("country") else None,
                frozenset(p.strip() for p in str(row.get("room_types") or "").split(";") if p.strip()),
            )
            for row in rows
        }
        return cls(hotels, window_days, snapshot_id)

    @property
    def hotel_ids(self) -> list[str]:
        return sorted(self.hotels)

    @property
    def room_types(self) -> list[str]:
        """Every room type some hotel sells."""
        return sorted(set().union(*(h.room_types for h in self.hotels.values())))

    def country(self, hotel_id: str) -> str | None:
        hotel = self.hotels.get(hotel_id)
        return hotel.country if hotel else None

    def checkin_window(self, today: date | None = None) -> tuple[date, date]:
        """The first and last check-in day accepted today (UTC)."""
        today = today or datetime.now(UTC).date()
        return today - timedelta(days=CHECKIN_GRACE_DAYS), today + timedelta(days=self.checkin_window_days)

    def check_hotel(self, hotel_id: str) -> str:
        if self.unknown_hotels([hotel_id]):
            raise ValueError("not a hotel of the hotels catalogue")
        return hotel_id

    def unknown_hotels(self, hotel_ids: Iterable[str]) -> list[str]:
        """The ids not in the catalogue, sorted (none while no catalogue is known)."""
        return sorted(h for h in hotel_ids if self.hotels and h not in self.hotels)

    def check_room_type(self, room_type: str, hotel_id: str | None) -> str:
        hotel = self.hotels.get(hotel_id or "")
        if self.hotels and room_type not in self.room_types:
            raise ValueError("not a room type of the hotels catalogue")
        if hotel is not None and room_type not in hotel.room_types:
            raise ValueError("not a room type this hotel sells")
        return room_type

    def check_check_in(self, check_in: date) -> date:
        first, last = self.checkin_window()
        if not first <= check_in <= last:
            raise ValueError(f"must lie from yesterday to {self.checkin_window_days} days ahead (UTC dates)")
        return check_in


def load(store: ServingStore, window_days: int) -> BookingRules:
    """The rules of the store's active snapshot (no catalogue before the first ``crm score``)."""
    snapshot = store.active()
    if snapshot is None:
        return BookingRules(checkin_window_days=window_days)
    return BookingRules.of(snapshot.hotels, window_days, snapshot.snapshot_id)


_CURRENT: ContextVar[BookingRules | None] = ContextVar("booking_rules", default=None)


def current() -> BookingRules:
    """The rules of the request being validated (defaults outside a request: no catalogue)."""
    return _CURRENT.get() or BookingRules()


@contextlib.contextmanager
def using(rules: BookingRules) -> Iterator[None]:
    """Validate (and render the OpenAPI document) with ``rules`` inside the block."""
    token = _CURRENT.set(rules)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def catalogue_enums(schema: dict[str, Any]) -> None:
    """``Booking``'s document: the catalogue's hotel ids and room types as enums (none before the first
    snapshot) and the check-in window in the description."""
    rules = current()
    properties = schema["properties"]
    if rules.hotels:
        properties["hotel_id"]["enum"] = rules.hotel_ids
        properties["room_type"]["enum"] = rules.room_types
    properties["check_in"]["description"] = (
        f"From yesterday to {rules.checkin_window_days} days ahead, UTC dates "
        "(CRM_SERVING_CHECKIN_WINDOW_DAYS)."
    )


def hotel_list_enum(schema: dict[str, Any]) -> None:
    """A model's ``hotels`` list (``/v1/keys``): the catalogue's hotel ids as its items' enum (none
    before the first snapshot), so schema-valid hotels are accepted."""
    rules = current()
    if not rules.hotels:
        return
    hotels = schema["properties"]["hotels"]
    for option in hotels.get("anyOf", [hotels]):  # optional lists: [array, null]
        if option.get("type") == "array":
            option["items"]["enum"] = rules.hotel_ids


def example_booking() -> dict[str, Any]:
    """The document's example booking: the catalogue's first hotel and a room type it sells, checking
    in 30 days from today."""
    rules = current()
    hotel = rules.hotels[rules.hotel_ids[0]] if rules.hotels else None
    room_types = sorted(hotel.room_types) if hotel else []
    return {
        "hotel_id": hotel.hotel_id if hotel else "H01",
        "check_in": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
        "nights": 3,
        "guests": 2,
        "room_type": "standard" if not room_types or "standard" in room_types else room_types[0],
        "channel": "web",
        "purpose": "leisure",
        "upgrade_available": True,
    }


class BookingRulesMiddleware:
    """Pure ASGI: each request is validated with its app's ``state.booking_rules``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rules = getattr(scope["app"].state, "booking_rules", None) if "app" in scope else None
        if scope["type"] != "http" or rules is None:
            await self.app(scope, receive, send)
            return
        with using(rules):
            await self.app(scope, receive, send)
