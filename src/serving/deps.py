"""Dependencies shared by the routes: the store, the served models, and the response's model header.

They only read ``app.state``, so they are async: FastAPI runs sync dependencies in its thread pool, a
hop per dependency that a booking request cannot afford."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from crm_analytics.serving.models import ServedModels
from crm_analytics.serving.problems import MODELS_NOT_LOADED, not_ready
from crm_analytics.store import ServingStore


async def get_store(request: Request) -> ServingStore:
    store: ServingStore = request.app.state.store
    if (problem := store.schema_problem()) is not None:  # cached once at head: free afterwards
        raise not_ready(problem)
    return store


async def get_models(request: Request, response: Response) -> ServedModels:
    """The champions for this request (a reference taken now: a reload never changes them mid-request);
    the response names their versions in ``X-Model-Versions`` unless the route names those of the stored
    snapshot it answers from."""
    models = request.app.state.models.current
    if models is None:
        raise not_ready(MODELS_NOT_LOADED)
    response.headers["X-Model-Versions"] = models.header()
    return models


Store = Annotated[ServingStore, Depends(get_store)]
Models = Annotated[ServedModels, Depends(get_models)]
