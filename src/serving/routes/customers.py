"""``GET /v1/customers/{id}`` (analysts): the unified profile with its scores."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from crm_analytics.serving.auth import require
from crm_analytics.serving.deps import Store
from crm_analytics.serving.keys import ApiKey
from crm_analytics.serving.metering import note_customers_read
from crm_analytics.serving.models import versions_header
from crm_analytics.serving.problems import ProblemError, problem_responses
from crm_analytics.serving.schemas import CustomerView, GuestBrief, ServiceFact

router = APIRouter(prefix="/v1/customers", tags=["analyst"])


@router.get("/{customer_id}", response_model=CustomerView, responses=problem_responses(404, 503))
async def get_customer(
    customer_id: str,
    request: Request,
    response: Response,
    store: Store,
    _key: Annotated[ApiKey, Depends(require("customers"))],
) -> CustomerView:
    """Surviving fields with their source, scores, segments and the guest brief (one indexed read, on
    the event loop)."""
    record = store.customer(customer_id)
    if record is None:
        raise ProblemError(404, "Not Found", "no such customer")
    note_customers_read(request, [record.customer_id])
    segments = record.segments
    response.headers["X-Model-Versions"] = versions_header(record.models or {})
    return CustomerView(
        customer_id=record.customer_id,
        profile=record.profile,
        scores=record.scores,
        segments={k: v for k, v in segments.items() if k not in ("value_tier", "churn_risk")},
        brief=GuestBrief(
            service_facts=[ServiceFact(**f) for f in record.brief],
            value_tier=segments.get("value_tier"),
            churn_risk=segments.get("churn_risk"),
        ),
        models=record.models or {},
        as_of=record.as_of,
    )
