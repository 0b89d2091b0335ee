"""Request and response bodies of the API (pydantic): strict (unknown fields, NaN and infinity are
rejected, and no value is coerced: ``"3"`` is not a number, ``0`` not a boolean, a date is an ISO
string), bounded, and documented with examples in the OpenAPI schema. What the OpenAPI document calls
invalid is rejected and what it calls valid is accepted (tests/serving/test_schemathesis.py), but for
inline score rows, which need the served churn model's features, and for dates outside the ranges a
JSON Schema cannot state (the check-in window around today, times 2000-01-01 to 2100-01-01, birth dates
from 1900): those ranges are in the fields' descriptions and refused with 422.

A booking's hotel and room type are checked against the served hotels catalogue
(:mod:`crm_analytics.serving.booking_rules`), which the document lists as enums; its examples are dated
relative to today."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crm_analytics.serving import booking_rules

# No whitespace or control character; C1 controls and U+FEFF are named since \s differs between
# regex engines (Python and Rust count U+0085, JavaScript counts U+FEFF), so all agree on this one.
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f-\x9f\ufeff]+$")]


def _integral(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3 (as JSON Schema has it); 3.5, "3" and true are not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _iso_text(value: Any) -> Any:
    """Dates and times come as ISO 8601 strings (lax parsing alone would take the number 0 as 1970-01-01)."""
    if not isinstance(value, str):
        raise ValueError("Input should be an ISO 8601 string")
    return value


Int = Annotated[int, BeforeValidator(_integral)]
IsoDate = Annotated[date, Field(strict=False), BeforeValidator(_iso_text)]
BirthDate = Annotated[
    IsoDate, AfterValidator(booking_rules.sane_birth_date), Field(description=booking_rules.BIRTH_RANGE)
]
IsoDateTime = Annotated[
    datetime,
    Field(strict=False, description=booking_rules.TIME_RANGE),
    BeforeValidator(_iso_text),
    AfterValidator(booking_rules.sane_time),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Booking(Strict):
    """The booking an offer would be shown for: a hotel of the served catalogue, a room type that hotel
    sells and a check-in from yesterday to the window's end."""

    model_config = ConfigDict(json_schema_extra=booking_rules.catalogue_enums)

    hotel_id: Id = Field(description="A hotel of the served hotels catalogue.")
    check_in: IsoDate
    nights: Int = Field(ge=1, le=365)
    guests: Int = Field(ge=1, le=20)
    room_type: Id = Field(description="A room type the hotel sells (hotels catalogue).")
    channel: Id = "direct"
    purpose: Literal["business", "leisure"] = "leisure"
    upgrade_available: bool = False
    already_booked: list[Id] = Field(
        default_factory=list, max_length=50, description="Offer ids booked for this stay."
    )

    @field_validator("hotel_id")
    @classmethod
    def _known_hotel(cls, hotel_id: str) -> str:
        return booking_rules.current().check_hotel(hotel_id)

    @field_validator("room_type")
    @classmethod
    def _sold_room_type(cls, room_type: str, info: ValidationInfo) -> str:
        return booking_rules.current().check_room_type(room_type, info.data.get("hotel_id"))

    @field_validator("check_in")
    @classmethod
    def _within_window(cls, check_in: date) -> date:
        return booking_rules.current().check_check_in(check_in)


class Guest(Strict):
    """What a booking system knows when it does not know our customer id: an e-mail or phone on record
    finds the guest outright; else a name plus one of birth date, postcode, street or city is matched
    with the profiles' linkage model, every detail given counting for or against (only a single
    confident match counts). Too little to go on is not an error: the guest is treated as unknown."""

    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    birth_date: BirthDate | None = None
    postcode: str | None = Field(default=None, max_length=20)
    street: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=100)

    def name_details(self) -> dict[str, Any] | None:
        """Every detail given, when a name and one more detail make a name look-up possible."""
        details = {k: v for k, v in self.model_dump().items() if v is not None and str(v).strip()}
        named = "first_name" in details and "last_name" in details
        other = {"birth_date", "postcode", "street", "city"} & set(details)
        return details if named and other else None


def _offers_examples(schema: dict[str, Any]) -> None:
    schema["examples"] = [
        {"customer_id": "U001f2c155b0469e9", "booking": booking_rules.example_booking(), "top_k": 3}
    ]


class OffersRequest(Strict):
    customer_id: Id | None = None
    guest: Guest | None = None
    booking: Booking
    top_k: Int = Field(default=3, ge=1, le=10)

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra=_offers_examples)


class Offer(BaseModel):
    offer_id: str
    name: str
    p_accept: float
    expected_value: float = Field(description="P(accept) x margin for this booking, EUR.")
    reason: str
    propensity: float = Field(
        description="The policy's probability of showing this offer here; the decision log keeps it "
        "for the offer log (feedback need not send it back)."
    )


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
    decision_id: str = Field(description="Names this answer; send it with the feedback on its offers.")
    customer_id: str | None = Field(
        description="Our id, only when the request sent it and the guest is known; a guest found by "
        "e-mail, phone or name is served without it (the decision id names the answer for feedback)."
    )
    known_guest: bool
    matched_by: Literal["customer_id", "email", "phone", "name"] | None = Field(
        description="How the guest was recognised (null: unknown guest)."
    )
    match_confidence: float | None = Field(
        description="The linkage model's probability for a match by name; 1 for the other ways."
    )
    offers: list[Offer]
    brief: GuestBrief
    models: dict[str, str] = Field(
        description="Model versions behind this answer: the live offer model that ranked, and those that "
        "made the stored snapshot the guest's segments and history come from."
    )
    as_of: str = Field(description="The day the stored snapshot is as of (its data's last day).")


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


# A demo-chain guest's row with every feature the demo's churn champion reads (`crm features catalog`),
# so the documented example is accepted (tests/serving/test_examples.py posts every example).
EXAMPLE_FEATURE_ROW: dict[str, Any] = {
    "frequency": 4,
    "recency": 62.0,
    "T": 72.0,
    "monetary_value": 277.4,
    "features": {
        "days_since_last": 10.0,
        "gap_mean_days": 15.5,
        "gap_std_days": 12.69,
        "overdue_ratio": 0.65,
        "seasonality_strength": 0.91,
        "spend_total": 1406.84,
        "spend_trend": -0.05,
        "lead_time_days_mean": 12.6,
        "nights_mean": 1.8,
        "guests_mean": 1.8,
        "business_share": 0.2,
        "cancellation_rate": 0.0,
        "refund_rate": 0.0,
        "share_channel_corporate": 0.2,
        "share_channel_direct": 0.0,
        "share_channel_ota": 0.4,
        "share_channel_phone": 0.2,
        "share_channel_web": 0.2,
        "extras_rate_breakfast": 0.0,
        "extras_rate_celebration": 0.4,
        "extras_rate_dining": 0.0,
        "extras_rate_early_checkin": 0.2,
        "extras_rate_late_checkout": 0.2,
        "extras_rate_parking": 0.0,
        "extras_rate_spa": 0.0,
        "extras_rate_transfer": 0.0,
        "extras_rate_upgrade": 0.2,
    },
}


class ScoresRequest(Strict):
    """Either ``customer_ids`` or ``rows``, not both."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["customer_ids"], "properties": {"customer_ids": {"type": "array"}}},
                {"required": ["rows"], "properties": {"rows": {"type": "array"}}},
            ],
            "examples": [
                {"customer_ids": ["U001f2c155b0469e9", "U00a2b9e3c41d7f68"]},
                {"rows": [EXAMPLE_FEATURE_ROW]},
            ],
        }
    )

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
    models: dict[str, str] = Field(
        description="The versions that produced these scores: the stored snapshot's for ids, the live "
        "champions' for inline rows."
    )
    as_of: str | None = Field(
        description="The day stored scores are as of (the snapshot's data end); null for inline rows."
    )


class SegmentSummary(BaseModel):
    family: str
    segment: str
    customers: int
    with_consent: int
    mean_clv: float | None
    mean_churn_probability: float | None
    as_of: str = Field(description="The day the membership is as of (the served snapshot's).")


class SegmentMember(BaseModel):
    customer_id: str
    clv: float | None
    churn_probability: float | None


class SegmentPage(BaseModel):
    segment: str
    customers: list[SegmentMember]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")
    as_of: str | None = Field(description="The day this page's membership is as of; null if empty.")


class ModelInfo(BaseModel):
    name: str
    version: str
    run_id: str
    loaded_at: AwareDatetime


class CustomerView(BaseModel):
    customer_id: str
    profile: dict[str, Any] | None
    scores: dict[str, Any] | None
    segments: dict[str, str]
    brief: GuestBrief
    models: dict[str, str] = Field(description="The versions that made the stored scores.")
    as_of: str = Field(description="The day the stored scores are as of.")


class FieldError(BaseModel):
    field: str = Field(description="Where the invalid value is, e.g. body.booking.nights.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``): the body of every error."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = Field(
        default=None, description="The route template answering (never the raw path); absent when none."
    )
    errors: list[FieldError] | None = Field(default=None, description="Validation errors (422 only).")
