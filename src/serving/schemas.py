"""Request and response bodies of the API (pydantic): strict (unknown fields, NaN and infinity are
rejected), bounded, and documented with examples in the OpenAPI schema."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class Booking(Strict):
    """The booking an offer would be shown for."""

    hotel_id: Id
    check_in: date
    nights: int = Field(ge=1, le=365)
    guests: int = Field(ge=1, le=20)
    room_type: Id
    channel: Id = "direct"
    purpose: Literal["business", "leisure"] = "leisure"
    upgrade_available: bool = False
    already_booked: list[Id] = Field(
        default_factory=list, max_length=50, description="Offer ids booked for this stay."
    )


class Guest(Strict):
    """What a booking system knows when it does not know our customer id."""

    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)


class OffersRequest(Strict):
    customer_id: Id | None = None
    guest: Guest | None = None
    booking: Booking
    top_k: int = Field(default=3, ge=1, le=10)

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "U001f2c155b0469e9",
                    "booking": {
                        "hotel_id": "H01",
                        "check_in": "2026-03-14",
                        "nights": 3,
                        "guests": 2,
                        "room_type": "standard",
                        "channel": "web",
                        "purpose": "leisure",
                        "upgrade_available": True,
                    },
                    "top_k": 3,
                }
            ]
        },
    )


class Offer(BaseModel):
    offer_id: str
    name: str
    p_accept: float
    expected_value: float = Field(description="P(accept) x margin for this booking, EUR.")
    reason: str


class ServiceFact(BaseModel):
    fact: str
    value: str
    source: str
    last_confirmed: date


class GuestBrief(BaseModel):
    """What the desk must know about the guest; empty for an unknown guest."""

    service_facts: list[ServiceFact] = Field(default_factory=list)
    value_tier: str | None = None
    churn_risk: str | None = None


class OffersResponse(BaseModel):
    customer_id: str | None = Field(description="Our id when the guest is known, else null.")
    known_guest: bool
    offers: list[Offer]
    brief: GuestBrief
    models: dict[str, str]


class FeedbackEvent(Strict):
    event_id: Id
    event: Literal["shown", "accepted", "declined"]
    offer_id: Id
    customer_id: Id | None = None
    occurred_at: datetime
    booking: Booking | None = None


class FeedbackRequest(Strict):
    events: list[FeedbackEvent] = Field(min_length=1, max_length=500)


class FeedbackResponse(BaseModel):
    stored: int
    duplicates: int


class FeatureRow(Strict):
    """A customer's purchase-history features (``crm features catalog``); BTYD columns required."""

    frequency: float = Field(ge=0, le=1e6)
    recency: float = Field(ge=0, le=1e6)
    T: float = Field(ge=0, le=1e6)
    monetary_value: float = Field(ge=0, le=1e9)
    features: dict[str, float | None] = Field(default_factory=dict, max_length=200)

    @model_validator(mode="after")
    def _recency_within_age(self) -> FeatureRow:
        if self.recency > self.T:
            raise ValueError("recency: may not exceed T")
        return self


class ScoresRequest(Strict):
    customer_ids: list[Id] | None = Field(default=None, min_length=1, max_length=1000)
    rows: list[FeatureRow] | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_input(self) -> ScoresRequest:
        if (self.customer_ids is None) == (self.rows is None):
            raise ValueError("give either customer_ids or rows")
        return self


class Score(BaseModel):
    customer_id: str | None
    found: bool
    churn_probability: float | None = None
    expected_purchases: float | None = None
    clv: float | None = None
    clv_low: float | None = None
    clv_high: float | None = None
    segments: dict[str, str] = Field(default_factory=dict)


class ScoresResponse(BaseModel):
    scores: list[Score]
    models: dict[str, str]


class SegmentSummary(BaseModel):
    family: str
    segment: str
    customers: int
    with_consent: int
    mean_clv: float | None
    mean_churn_probability: float | None


class SegmentMember(BaseModel):
    customer_id: str
    clv: float | None
    churn_probability: float | None


class SegmentPage(BaseModel):
    segment: str
    customers: list[SegmentMember]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class ModelInfo(BaseModel):
    name: str
    version: str
    run_id: str
    loaded_at: datetime


class CustomerView(BaseModel):
    customer_id: str
    profile: dict[str, Any] | None
    scores: dict[str, Any] | None
    segments: dict[str, str]
    brief: GuestBrief
    models: dict[str, str]
