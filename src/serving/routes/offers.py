"""``POST /v1/offers`` (booking systems): the offers to make for a booking, and the guest brief.

The handler is async and does its work on the event loop: about a millisecond of CPU (a guest's row and
their recent showings, read by index on one connection, and the ranker). The answer is then committed to
the decision log (on a SQLite store by the loop itself, ``store.sqlite_decision_log``; on PostgreSQL by
the group-commit thread, ``store.decision_log``) and leaves after the commit. A look-up by name
(~0.2 ms) goes to a thread. A sync handler would run in FastAPI's thread pool, and that hop cost more
than the work itself (benchmarks/serving_throughput.py: p99 11.5 -> 4.9 ms, one worker). With the
store on a remote PostgreSQL the reads block the loop for their round trips: run more workers.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from crm_analytics.models.offers.eligibility import CONTACT_WINDOW_DAYS, BookingContext, GuestFacts
from crm_analytics.models.offers.family import FAMILY as OFFERS
from crm_analytics.profiles.records import normalise_email, normalise_phone
from crm_analytics.serving.auth import holds, require
from crm_analytics.serving.deps import Models, Store
from crm_analytics.serving.guest_lookup import NameIndex
from crm_analytics.serving.guest_quota import GuestQuota
from crm_analytics.serving.keys import ApiKey
from crm_analytics.serving.metering import note_customers_read
from crm_analytics.serving.models import versions_header
from crm_analytics.serving.problems import (
    NO_SNAPSHOT,
    ProblemError,
    not_ready,
    problem_responses,
    require_json,
)
from crm_analytics.serving.rankers import RankerCache
from crm_analytics.serving.schemas import GuestBrief, OffersRequest, OffersResponse, ServiceFact
from crm_analytics.store import BookingGuest, Decision, ServingStore

router = APIRouter(prefix="/v1/offers", tags=["booking"])
_rng = np.random.default_rng()  # exploration draws (the event loop's thread only)
DECISION_LOG_DOWN = ("the decision log cannot be written just now; retry", 1)
FACT_FIELDS = {
    "allergy": "allergies",
    "accessibility": "accessibility_needs",
    "room_preference": "room_preferences",
}


@router.post(
    "", response_model=OffersResponse, dependencies=[Depends(require_json)], responses=problem_responses(503)
)
async def post_offers(
    request: Request,
    response: Response,
    body: OffersRequest,
    store: Store,
    models: Models,
    key: Annotated[ApiKey, Depends(require("offers"))],
    may_read_brief: Annotated[bool, Depends(holds("brief"))],
) -> OffersResponse:
    """Top-k eligible offers by expected margin, each with a reason, and what staff must know about the
    guest (keys with the ``brief`` scope). An unknown guest gets context-only offers and an empty brief.
    A key bound to hotels answers for bookings there only (403); a key that read more distinct guests
    this hour than ``CRM_SERVING_GUESTS_PER_KEY_HOUR`` gets 429 until the hour ends. Our customer id is
    returned only to a caller that sent it: a guest found by e-mail, phone or name stays anonymous.
    The answer is in the decision log before it is sent (503 when the log cannot be written: nothing
    leaves unlogged)."""
    if not key.serves_hotel(body.booking.hotel_id):
        raise ProblemError(
            403,
            "Forbidden",
            "booking.hotel_id: this API key is bound to other hotels",
            type_suffix="forbidden",
        )
    quota: GuestQuota = request.app.state.guest_quota
    identified = body.customer_id is not None or body.guest is not None
    if identified:
        await quota.check(key.key_id)
    now = datetime.now(UTC).replace(tzinfo=None)
    recognised = await _resolve(request, store, body, since=now - timedelta(days=CONTACT_WINDOW_DAYS))
    guest = recognised.guest if recognised else None
    if guest is not None:
        await quota.note(key.key_id, guest.customer_id)
    rankers: RankerCache = request.app.state.rankers
    served = rankers.get(store, models, guest.snapshot_id if guest else None)
    if served is None:
        raise not_ready(NO_SNAPSHOT)
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
    brief = guest.brief if guest else []
    facts = GuestFacts(
        **{
            field: tuple(f["value"] for f in brief if f["fact"] == fact)
            for fact, field in FACT_FIELDS.items()
        },
        bought_this_stay=frozenset(booking.already_booked),
        offers_shown_recently=guest.offers_shown_recently if guest else 0,
    )
    ranked = served.ranker.rank(
        context,
        facts,
        history=guest.history if guest else None,
        shown_at=now,
        top_k=body.top_k,
        explore=request.app.state.settings.serving_exploration,
        rng=_rng,
    )
    segments = guest.segments if guest and may_read_brief else {}
    if guest is not None:
        note_customers_read(request, [guest.customer_id])
    # the guest's row and its snapshot's versions come from one read; the live offer model ranked
    versions = {**(guest.models or {} if guest else served.snapshot.models)}
    versions[OFFERS.name] = models.versions[OFFERS.name]
    decision = Decision(
        decision_id=uuid.uuid4().hex,
        customer_id=guest.customer_id if guest else None,
        decided_at=now,
        offers=tuple((offer.offer_id, offer.propensity) for offer in ranked),
        models=versions,
        key_id=key.key_id,
        hotel_id=booking.hotel_id,
        matched_by=recognised.matched_by if recognised else None,
    )
    try:
        await request.app.state.decisions.record(decision)
    except (SQLAlchemyError, sqlite3.Error):
        raise not_ready(DECISION_LOG_DOWN) from None
    response.headers["X-Model-Versions"] = versions_header(versions)
    return OffersResponse(
        decision_id=decision.decision_id,
        customer_id=body.customer_id if guest is not None else None,
        known_guest=guest is not None,
        matched_by=recognised.matched_by if recognised else None,
        match_confidence=recognised.confidence if recognised else None,
        offers=[vars(offer) for offer in ranked],  # asdict deep-copies every field
        brief=GuestBrief(
            service_facts=[ServiceFact(**f) for f in brief] if may_read_brief else [],
            value_tier=segments.get("value_tier"),
            churn_risk=segments.get("churn_risk"),
        ),
        models=versions,
        as_of=guest.as_of if guest else served.snapshot.as_of,
    )


@dataclass(frozen=True)
class Recognised:
    """The guest a booking is for, how they were found, and how sure that is."""

    guest: BookingGuest
    matched_by: str
    confidence: float


async def _resolve(
    request: Request, store: ServingStore, body: OffersRequest, since: datetime
) -> Recognised | None:
    """The guest by our id, else by an exact e-mail or phone on record (one customer only), else by
    name and the other details (one confident match only, in a thread)."""
    if body.customer_id is not None:
        guest = store.booking_guest(body.customer_id, since)
        return Recognised(guest, "customer_id", 1.0) if guest else None
    if body.guest is None:
        return None
    country = request.app.state.booking_rules.country(body.booking.hotel_id)  # what the desk types
    for kind, value in (
        ("email", normalise_email(body.guest.email)),
        ("phone", normalise_phone(body.guest.phone, country)),
    ):
        if value:
            found = store.find_contact(kind, value)
            if len(found) == 1 and (guest := store.booking_guest(found[0], since)):
                return Recognised(guest, kind, 1.0)
    details = body.guest.name_details()
    snapshot_id = store.active_id() if details else None
    if details is None or snapshot_id is None:
        return None
    names: NameIndex = request.app.state.names
    match = await run_in_threadpool(names.best_match, store, snapshot_id, details, country)
    guest = store.booking_guest(match.customer_id, since) if match else None
    return Recognised(guest, "name", match.confidence) if guest and match else None
