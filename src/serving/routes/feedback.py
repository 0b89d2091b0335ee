"""``POST /v1/feedback`` (booking systems): offers shown, accepted or declined."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from crm_analytics.serving.auth import require
from crm_analytics.serving.deps import Store
from crm_analytics.serving.keys import ApiKey
from crm_analytics.serving.problems import ProblemError, problem_responses, require_json
from crm_analytics.serving.schemas import FeedbackRequest, FeedbackResponse, ShownEvent
from crm_analytics.store import now

router = APIRouter(prefix="/v1/feedback", tags=["booking"])


@router.post(
    "",
    response_model=FeedbackResponse,
    dependencies=[Depends(require_json)],
    responses=problem_responses(409),
)
def post_feedback(
    body: FeedbackRequest, store: Store, key: Annotated[ApiKey, Depends(require("feedback"))]
) -> FeedbackResponse:
    """Each event is committed to disk before the answer; a retried event id is not stored twice."""
    stored = duplicates = 0
    for event in body.events:
        shown = event if isinstance(event, ShownEvent) else None
        row = {
            "event_id": event.event_id,
            "event": event.event,
            "offer_id": event.offer_id,
            "customer_id": event.customer_id,
            "occurred_at": _utc(event.occurred_at),
            "context": json.dumps(shown.booking.model_dump(mode="json")) if shown else None,
            "received_at": now(),
            "key_id": key.key_id,
            "decision_id": event.decision_id,
            "propensity": shown.propensity if shown else None,
        }
        try:
            new = store.record_feedback(row)
        except ValueError as exc:
            raise ProblemError(409, "Conflict", str(exc)) from None
        stored += new
        duplicates += not new
    return FeedbackResponse(stored=stored, duplicates=duplicates)


def _utc(moment: datetime) -> datetime:
    """Naive UTC, as the store keeps times; a time without a zone is taken as UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
