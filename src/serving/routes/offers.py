"""``POST /v1/offers`` (booking systems): the offers to make for a booking, and the guest brief."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends

from crm_analytics.models.offers.eligibility import CONTACT_WINDOW_DAYS, BookingContext, GuestFacts
from crm_analytics.models.offers.policy import rank_offers
from crm_analytics.profiles.records import normalise_email, normalise_phone
from crm_analytics.serving.auth import require
from crm_analytics.serving.deps import Models, Store
from crm_analytics.serving.keys import ApiKey
from crm_analytics.serving.problems import ProblemError, problem_responses, require_json
from crm_analytics.serving.schemas import GuestBrief, OffersRequest, OffersResponse, ServiceFact
from crm_analytics.serving.store import CustomerRecord, ServingStore

router = APIRouter(prefix="/v1/offers", tags=["booking"])
FACT_FIELDS = {
    "allergy": "allergies",
    "accessibility": "accessibility_needs",
    "room_preference": "room_preferences",
}


@router.post(
    "", response_model=OffersResponse, dependencies=[Depends(require_json)], responses=problem_responses(503)
)
def post_offers(
    body: OffersRequest,
    store: Store,
    models: Models,
    _key: Annotated[ApiKey, Depends(require("offers"))],
) -> OffersResponse:
    """Top-k eligible offers by expected margin, each with a reason, and what staff must know about the
    guest. An unknown guest gets context-only offers and an empty brief."""
    snapshot = store.active()
    if snapshot is None:
        raise ProblemError(503, "Not ready", "no scores yet; run `crm score`", headers={"Retry-After": "30"})
    customer = _resolve(store, body)
    now = datetime.now(UTC).replace(tzinfo=None)
    booking = body.booking
    context = BookingContext(
        booking.hotel_id,
        booking.check_in,
        booking.nights,
        booking.guests,
        booking.room_type,
        booking.channel,
        booking.purpose,
        booking.upgrade_available,
    )
    brief = customer.brief if customer else []
    facts = GuestFacts(
        **{
            field: tuple(f["value"] for f in brief if f["fact"] == fact)
            for fact, field in FACT_FIELDS.items()
        },
        bought_this_stay=frozenset(booking.already_booked),
        offers_shown_recently=store.shown_since(
            customer.customer_id, now - timedelta(days=CONTACT_WINDOW_DAYS)
        )
        if customer
        else 0,
    )
    history = customer.history if customer else None
    known = history is not None and any(v is not None for v in history.values())
    model = models.offers_full if known else models.offers_context
    ranked = rank_offers(
        model,
        pd.DataFrame(snapshot.catalogue),
        context,
        facts,
        customer=pd.Series(history, dtype=float) if known and history else None,
        shown_at=pd.Timestamp(now),
        top_k=body.top_k,
    )
    scores = customer.segments if customer else {}
    return OffersResponse(
        customer_id=customer.customer_id if customer else None,
        known_guest=customer is not None,
        offers=ranked.to_dict(orient="records"),
        brief=GuestBrief(
            service_facts=[ServiceFact(**f) for f in brief],
            value_tier=scores.get("value_tier"),
            churn_risk=scores.get("churn_risk"),
        ),
        models=models.versions,
    )


def _resolve(store: ServingStore, body: OffersRequest) -> CustomerRecord | None:
    """The guest by our id, else by an exact e-mail or phone on record (one customer only)."""
    if body.customer_id is not None:
        return store.customer(body.customer_id)
    if body.guest is None:
        return None
    for kind, value in (
        ("email", normalise_email(body.guest.email)),
        ("phone", normalise_phone(body.guest.phone)),
    ):
        if value:
            found = store.find_contact(kind, value)
            if len(found) == 1:
                return store.customer(found[0])
    return None
