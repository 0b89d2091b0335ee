"""``POST /v1/feedback`` (booking systems): offers shown, accepted or declined.

Every event must name a logged ``/v1/offers`` answer (the decision log, ``store.decision_log``): an
unknown ``decision_id``, or one for a booking at a hotel the key is not bound to, is a 404 (the same
answer: no way to learn of other hotels' decisions); an offer that answer did not make or another guest
than its own a 422, and nothing of the request is stored then. A guest the answer did not name (found
by e-mail, phone or name, or logged before that was recorded) may not be named in its feedback either:
any ``customer_id`` is a 422 there, right or wrong, so feedback cannot confirm a guess of our id. The
guest is taken from the decision log, and the caller's ``propensity`` is ignored: the offer log takes
it from the decision log.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from crm_analytics.serving.auth import require
from crm_analytics.serving.deps import Store
from crm_analytics.serving.feedback_schemas import AnswerEvent, FeedbackRequest, FeedbackResponse, ShownEvent
from crm_analytics.serving.keys import ApiKey
from crm_analytics.serving.problems import ProblemError, problem_responses, require_json
from crm_analytics.store import Decision, now

router = APIRouter(prefix="/v1/feedback", tags=["booking"])


@router.post(
    "",
    response_model=FeedbackResponse,
    dependencies=[Depends(require_json)],
    responses=problem_responses(404, 409),
)
def post_feedback(
    body: FeedbackRequest, store: Store, key: Annotated[ApiKey, Depends(require("feedback"))]
) -> FeedbackResponse:
    """Each event is committed to disk before the answer; a retried event id is not stored twice.
    Events must come from a logged ``/v1/offers`` answer (see the module docstring)."""
    logged = store.decisions(event.decision_id for event in body.events)
    visible = {decision_id: d for decision_id, d in logged.items() if _visible(d, key)}
    guests = [_guest_of(i, event, visible.get(event.decision_id)) for i, event in enumerate(body.events)]
    stored = duplicates = 0
    for event, guest in zip(body.events, guests, strict=True):
        shown = event if isinstance(event, ShownEvent) else None
        row = {
            "event_id": event.event_id,
            "event": event.event,
            "offer_id": event.offer_id,
            "customer_id": guest,
            "occurred_at": _utc(event.occurred_at),
            "context": json.dumps(shown.booking.model_dump(mode="json")) if shown else None,
            "received_at": now(),
            "key_id": key.key_id,
            "decision_id": event.decision_id,
        }
        try:
            new = store.record_feedback(row)
        except ValueError as exc:
            raise ProblemError(409, "Conflict", str(exc)) from None
        stored += new
        duplicates += not new
    return FeedbackResponse(stored=stored, duplicates=duplicates)


def _guest_of(index: int, event: ShownEvent | AnswerEvent, decision: Decision | None) -> str | None:
    """The guest of the event's logged decision, once the event is shown to match it."""
    field = f"events[{index}]"
    if decision is None:
        raise ProblemError(
            404,
            "Unknown decision",
            f"{field}.decision_id: no /v1/offers answer with this id is in the decision log",
            type_suffix="unknown-decision",
        )
    if event.offer_id not in decision.propensities:
        raise ProblemError(
            422,
            "Not that decision's",
            f"{field}.offer_id: not among the offers of that /v1/offers answer",
            type_suffix="decision-mismatch",
        )
    if (
        event.customer_id is not None
        and decision.customer_id is not None
        and decision.matched_by != "customer_id"
    ):
        raise ProblemError(
            422,
            "Not that decision's",
            f"{field}.customer_id: that /v1/offers answer did not name its guest; leave it out",
            type_suffix="decision-mismatch",
        )
    if event.customer_id is not None and event.customer_id != decision.customer_id:
        raise ProblemError(
            422,
            "Not that decision's",
            f"{field}.customer_id: not the guest of that /v1/offers answer",
            type_suffix="decision-mismatch",
        )
    return decision.customer_id


def _visible(decision: Decision, key: ApiKey) -> bool:
    """Whether the key may post feedback on the decision: one for a booking at a hotel it serves; a
    decision logged before hotels were recorded (0006), only the key that asked for it or an unbound
    key."""
    if decision.hotel_id is not None:
        return key.serves_hotel(decision.hotel_id)
    return key.hotels is None or decision.key_id == key.key_id


def _utc(moment: datetime) -> datetime:
    """Naive UTC, as the store keeps times; a time without a zone is taken as UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
