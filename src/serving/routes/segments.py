"""``GET /v1/segments`` and ``GET /v1/segments/{name}/customers`` (marketing): consenting members only."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from crm_analytics.serving.auth import require
from crm_analytics.serving.deps import Store
from crm_analytics.serving.keys import ApiKey
from crm_analytics.serving.metering import note_customers_read
from crm_analytics.serving.problems import ProblemError, problem_responses
from crm_analytics.serving.schemas import SegmentMember, SegmentPage, SegmentSummary

router = APIRouter(prefix="/v1/segments", tags=["marketing"])
MAX_PAGE = 1000
Marketing = Annotated[ApiKey, Depends(require("segments"))]


@router.get("", response_model=list[SegmentSummary])
def get_segments(store: Store, _key: Marketing) -> list[SegmentSummary]:
    """Every segment with its size, consenting members, mean CLV and churn probability."""
    return [SegmentSummary(**row) for row in store.segments()]


@router.get(
    "/{name}/customers",
    response_model=SegmentPage,
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with Accept: text/csv"},
        **problem_responses(400, 404),
    },
)
def get_segment_customers(
    name: str,
    request: Request,
    store: Store,
    _key: Marketing,
    cursor: Annotated[str | None, Query(max_length=400, description="From the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    min_clv: Annotated[float | None, Query(ge=0, le=1e12, allow_inf_nan=False)] = None,
    max_churn: Annotated[float | None, Query(ge=0, le=1, allow_inf_nan=False)] = None,
) -> SegmentPage | Response:
    """A page of the segment's customers who gave marketing consent, in id order."""
    if not store.has_segment(name):
        raise ProblemError(404, "Not Found", "no such segment; see GET /v1/segments")
    rows = store.segment_page(name, after=_decode(cursor), limit=limit, min_clv=min_clv, max_churn=max_churn)
    members = [
        SegmentMember(customer_id=r["customer_id"], clv=r["clv"], churn_probability=r["churn_probability"])
        for r in rows
    ]
    note_customers_read(request, (m.customer_id for m in members))
    next_cursor = _encode(members[-1].customer_id) if len(members) == limit else None
    as_of = rows[0]["as_of"] if rows else None
    if "text/csv" in request.headers.get("accept", ""):
        return _csv(members, next_cursor, as_of)
    return SegmentPage(segment=name, customers=members, next_cursor=next_cursor, as_of=as_of)


def _csv(members: list[SegmentMember], next_cursor: str | None, as_of: str | None) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["customer_id", "clv", "churn_probability"])
    writer.writerows([m.customer_id, m.clv, m.churn_probability] for m in members)
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
    if as_of:
        headers["X-As-Of"] = as_of
    return Response(buffer.getvalue(), media_type="text/csv", headers=headers)


def _encode(customer_id: str) -> str:
    return base64.urlsafe_b64encode(customer_id.encode()).decode()


def _decode(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        decoded = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not decoded:
        raise ProblemError(400, "Bad Request", "cursor: not a cursor from a previous page")
    return decoded
