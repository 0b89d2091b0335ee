"""Bodies of ``/v1/feedback`` (pydantic, strict like every body in :mod:`crm_analytics.serving.schemas`):
offers shown from a logged ``/v1/offers`` answer and the guests' answers to them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_analytics.serving import booking_rules
from crm_analytics.serving.schemas import Booking, Id, IsoDateTime, Strict

DECISION_ID = Field(
    description="The `decision_id` of the /v1/offers answer the offer came from: it must name a logged "
    "answer (else 404), `offer_id` must be among its offers and `customer_id`, when given, its guest "
    "(else 422)."
)
CUSTOMER_ID = Field(
    default=None,
    description="Optional: the guest of that answer (checked against the decision log, which supplies "
    "it when omitted).",
)


class ShownEvent(Strict):
    """An offer from a logged ``/v1/offers`` answer shown to the guest, with the booking; the offer's
    propensity comes from the decision log."""

    event_id: Id
    event: Literal["shown"]
    offer_id: Id
    customer_id: Id | None = CUSTOMER_ID
    occurred_at: IsoDateTime
    decision_id: Id = DECISION_ID
    propensity: float | None = Field(
        default=None,
        gt=0,
        le=1,
        deprecated=True,
        description="Ignored: the offer log takes the propensity from the decision log.",
    )
    booking: Booking


class AnswerEvent(Strict):
    """The guest's answer to an offer shown from a ``/v1/offers`` answer."""

    event_id: Id
    event: Literal["accepted", "declined"]
    offer_id: Id
    customer_id: Id | None = CUSTOMER_ID
    occurred_at: IsoDateTime
    decision_id: Id = DECISION_ID


FeedbackEvent = Annotated[ShownEvent | AnswerEvent, Field(discriminator="event")]


def _feedback_examples(schema: dict[str, Any]) -> None:
    """A shown offer and its acceptance, yesterday at 10:15 UTC (the document changes once a day)."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    shown_at = datetime.combine(yesterday, time(10, 15), UTC)
    common = {
        "offer_id": "O01",
        "customer_id": "U001f2c155b0469e9",
        "decision_id": "3f1c9e0b7a2d4c55a8e6b0d1f2a3b4c5",
    }
    schema["examples"] = [
        {
            "events": [
                {
                    "event_id": "pms-london-000123-shown-O01",
                    "event": "shown",
                    **common,
                    "occurred_at": shown_at.isoformat().replace("+00:00", "Z"),
                    "booking": booking_rules.example_booking(),
                },
                {
                    "event_id": "pms-london-000123-accepted-O01",
                    "event": "accepted",
                    **common,
                    "occurred_at": (shown_at + timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
                },
            ]
        }
    ]


class FeedbackRequest(Strict):
    events: list[FeedbackEvent] = Field(min_length=1, max_length=500)

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra=_feedback_examples)


class FeedbackResponse(BaseModel):
    stored: int
    duplicates: int
