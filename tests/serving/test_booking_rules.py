"""Booking context checked against the served hotels catalogue, and every date and time bounded: bad
input is a 422 naming the field, never a 5xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crm_analytics.serving.booking_rules import example_booking
from tests.serving.conftest import Served, auth

BOOKING = example_booking()


def offers(client: TestClient, served: Served, body: dict[str, Any]) -> Any:
    return client.post("/v1/offers", json=body, headers=auth(served, "booking"))


def fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


def days_from_today(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hotel_id": "H99"}, "body.booking.hotel_id"),
        ({"room_type": "penthouse"}, "body.booking.room_type"),
        ({"check_in": -2}, "body.booking.check_in"),  # days from today, counted when the test runs
        ({"check_in": 551}, "body.booking.check_in"),
        ({"check_in": "0089-03-14"}, "body.booking.check_in"),
        ({"check_in": "9950-03-14"}, "body.booking.check_in"),
    ],
)
def test_post_offers_booking_outside_the_catalogue_or_window_is_422_naming_the_field(
    client: TestClient, served: Served, change: dict[str, str | int], field: str
) -> None:
    change = {k: days_from_today(v) if isinstance(v, int) else v for k, v in change.items()}
    response = offers(client, served, {"booking": BOOKING | change})
    assert response.status_code == 422
    assert fields(response) == [field]
    assert next(iter(change.values())) not in response.text  # the input is not echoed


@pytest.mark.parametrize("days", [-1, 0, 550])
def test_post_offers_check_in_within_the_window_is_accepted(
    client: TestClient, served: Served, days: int
) -> None:
    response = offers(client, served, {"booking": BOOKING | {"check_in": days_from_today(days)}})
    assert response.status_code == 200


@pytest.mark.parametrize("birth_date", ["0001-01-01", "1899-12-31", "9950-01-01"])
def test_post_offers_birth_date_out_of_range_is_422(
    client: TestClient, served: Served, birth_date: str
) -> None:
    guest = {"first_name": "Ann", "last_name": "Lee", "birth_date": birth_date}
    response = offers(client, served, {"guest": guest, "booking": BOOKING})
    assert response.status_code == 422
    assert fields(response) == ["body.guest.birth_date"]


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+14:00",
        "0089-03-01T10:00:00Z",
        "9950-03-01T10:00:00Z",
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "2000-01-01T08:00:00+14:00",
    ],
)
def test_post_feedback_time_out_of_range_is_422_naming_the_field(
    client: TestClient, served: Served, occurred_at: str
) -> None:
    event = {
        "event_id": "bounds-1",
        "event": "accepted",
        "offer_id": "O01",
        "occurred_at": occurred_at,
        "decision_id": "3f1c9e0b7a2d4c55a8e6b0d1f2a3b4c5",
    }
    response = client.post("/v1/feedback", json={"events": [event]}, headers=auth(served, "booking"))
    assert response.status_code == 422
    assert fields(response) == ["body.events.0.accepted.occurred_at"]


def test_openapi_lists_the_catalogue_and_dates_its_examples_from_today(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    booking = document["components"]["schemas"]["Booking"]["properties"]
    assert booking["hotel_id"]["enum"] == [f"H{i:02d}" for i in range(1, 13)]
    assert "standard" in booking["room_type"]["enum"]
    schemas = document["components"]["schemas"]
    key_hotels = next(o for o in schemas["KeyRequest"]["properties"]["hotels"]["anyOf"] if "items" in o)
    assert key_hotels["items"]["enum"] == booking["hotel_id"]["enum"]  # /v1/keys binds to these only
    assert schemas["HotelsRequest"]["properties"]["hotels"]["items"]["enum"] == booking["hotel_id"]["enum"]
    example = document["components"]["schemas"]["OffersRequest"]["examples"][0]["booking"]
    assert example["check_in"] == days_from_today(30)
