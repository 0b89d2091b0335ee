"""``POST /v1/admin/reload`` (admin): load moved champions and the newest snapshot's name index now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from crm_analytics.serving.auth import require
from crm_analytics.serving.deps import Store
from crm_analytics.serving.keys import ApiKey
from crm_analytics.serving.models import ModelHolder
from crm_analytics.serving.problems import not_ready, problem_responses

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class Reloaded(BaseModel):
    reloaded: bool
    models: dict[str, str]
    snapshot_id: str | None


@router.post("/reload", response_model=Reloaded, responses=problem_responses(503))
async def post_reload(
    request: Request, store: Store, _key: Annotated[ApiKey, Depends(require("reload"))]
) -> Reloaded:
    """What the background check does every ``CRM_SERVING_RELOAD_SECONDS``, at once, in the worker that
    answers (the others follow at their next check). A failed load keeps the loaded models, and a
    champion that does not load is replaced by its previous version: both 503, naming what failed."""
    holder: ModelHolder = request.app.state.models
    holder.last_error = None  # this attempt's error only
    reloaded = await run_in_threadpool(holder.reload_if_moved)
    if holder.current is None or holder.last_error or holder.current.fallbacks:
        raise not_ready(
            f"champions not loaded ({holder.last_error or 'none'}); the loaded models keep serving"
        )
    snapshot_id = await run_in_threadpool(store.active_id)
    request.app.state.names.prepare(store, snapshot_id)
    return Reloaded(reloaded=reloaded, models=holder.current.versions, snapshot_id=snapshot_id)
