"""``/livez``, ``/readyz``, ``/metrics`` and ``GET /v1/models``: cheap reads, answered on the event loop."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from crm_analytics.serving.auth import require
from crm_analytics.serving.deps import Models
from crm_analytics.serving.keys import ApiKey
from crm_analytics.serving.problems import MODELS_NOT_LOADED, NO_SNAPSHOT, not_ready, problem_responses
from crm_analytics.serving.schemas import ModelInfo

router = APIRouter(tags=["operations"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
async def readyz(request: Request) -> dict[str, Any]:
    """Ready once the serving store's schema is current, the champions are loaded and warmed up and a
    scoring snapshot is there; says which model versions serve, whether they are the ``@champion``
    aliases as last seen (checked every ``CRM_SERVING_RELOAD_SECONDS``), and any champion that did not
    load (an earlier version serving in its place)."""
    if (problem := request.app.state.store.schema_problem()) is not None:
        raise not_ready(problem)
    holder = request.app.state.models
    served = holder.current
    if served is None:
        raise not_ready(MODELS_NOT_LOADED)
    if request.app.state.store.active_id() is None:
        raise not_ready(NO_SNAPSHOT)
    return {
        "status": "ready",
        "models": dict(sorted(served.versions.items())),
        "aliases_current": served.versions == holder.aliases,
        "champions_not_loaded": served.fallbacks,
    }


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus metrics: requests by route and status and latency histograms, of every worker under
    ``crm serve``; the monitoring gauges the last refresh stored (drift, data quality, realized
    performance) and the served snapshot's age in days."""
    return PlainTextResponse(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/models", response_model=list[ModelInfo], tags=["analyst"], responses=problem_responses(503))
async def get_models(models: Models, _key: Annotated[ApiKey, Depends(require("models"))]) -> list[ModelInfo]:
    """The served champions: name, version, run id and when they were loaded."""
    return [
        ModelInfo(
            name=name,
            version=version,
            run_id=models.run_ids[name],
            loaded_at=models.loaded_at.replace(tzinfo=UTC),  # the holder keeps naive UTC
        )
        for name, version in sorted(models.versions.items())
    ]
