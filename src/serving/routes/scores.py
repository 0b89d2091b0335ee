"""``POST /v1/scores`` (analysts, systems): churn, expected purchases, CLV with its interval, segments."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from crm_analytics.serving.auth import require
from crm_analytics.serving.deps import Models, Store
from crm_analytics.serving.keys import ApiKey
from crm_analytics.serving.metering import note_customers_read
from crm_analytics.serving.models import MissingFeaturesError, ServedModels, versions_header
from crm_analytics.serving.problems import ProblemError, problem_responses, require_json
from crm_analytics.serving.schemas import FeatureRow, Score, ScoresRequest, ScoresResponse

router = APIRouter(prefix="/v1/scores", tags=["analyst"])
SCORE_FIELDS = ("churn_probability", "expected_purchases", "clv", "clv_low", "clv_high")


@router.post(
    "",
    response_model=ScoresResponse,
    dependencies=[Depends(require_json)],
    responses=problem_responses(503),
)
async def post_scores(
    body: ScoresRequest,
    request: Request,
    response: Response,
    store: Store,
    models: Models,
    _key: Annotated[ApiKey, Depends(require("scores"))],
) -> ScoresResponse:
    """Up to 1,000 customers by id (from the latest batch scoring) or inline feature rows (scored now).
    ``models`` names the versions that produced the scores returned, ``as_of`` the day of stored ones.

    A few ids are answered on the event loop (one indexed read, as ``/v1/offers``); more ids, whose rows
    take a while to decode, and inline rows, which run the models, go to the thread pool so the
    worker's bookings are not held up."""
    if body.customer_ids is not None:
        ids = body.customer_ids
        found = (
            store.customers_by_id(ids)
            if len(ids) <= 20
            else await run_in_threadpool(store.customers_by_id, ids)
        )
        note_customers_read(request, found)
        scores = []
        for cid in body.customer_ids:
            record = found.get(cid)
            values = (record.scores or {}) if record else {}
            scores.append(
                Score(
                    customer_id=cid,
                    found=record is not None,
                    segments=record.segments if record else {},
                    **{k: values.get(k) for k in SCORE_FIELDS},
                )
            )
        stored = next(iter(found.values()), None)
        if stored is None:  # nothing found: say which snapshot was asked
            snapshot = await run_in_threadpool(store.active)
            versions, as_of = (snapshot.models, snapshot.as_of) if snapshot else ({}, None)
        else:
            versions, as_of = stored.models or {}, stored.as_of
        response.headers["X-Model-Versions"] = versions_header(versions)  # the stored scores' makers
        return ScoresResponse(scores=scores, models=versions, as_of=as_of)
    scored = await run_in_threadpool(score_rows, models, body.rows or [])
    return ScoresResponse(scores=scored, models=models.versions, as_of=None)


def score_rows(models: ServedModels, rows: list[FeatureRow]) -> list[Score]:
    """Score inline feature rows with every scored champion (CLV from the BTYD columns, churn from the
    full feature row)."""
    frame = pd.DataFrame([{**row.features, **row.model_dump(exclude={"features"})} for row in rows])
    try:
        values = models.score(frame)
    except MissingFeaturesError as exc:
        raise ProblemError(422, "Unprocessable Content", f"rows: {exc}") from None
    except ValueError as exc:  # a model's own input check: the messages name a column, never a value
        raise ProblemError(422, "Unprocessable Content", f"rows: {exc}") from None
    return [
        Score(customer_id=None, found=True, **{k: float(row[k]) for k in SCORE_FIELDS})
        for _, row in values.iterrows()
    ]
