"""Dependencies shared by the routes: the store, the served models, and the response's model header."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from crm_analytics.serving.models import ServedModels
from crm_analytics.serving.problems import ProblemError
from crm_analytics.serving.store import ServingStore


def get_store(request: Request) -> ServingStore:
    store: ServingStore = request.app.state.store
    return store


def get_models(request: Request, response: Response) -> ServedModels:
    """The champions for this request (a reference taken now: a reload never changes them mid-request);
    the response names their versions in ``X-Model-Versions``."""
    models = request.app.state.models.current
    if models is None:
        raise ProblemError(503, "Not ready", "models are not loaded yet", headers={"Retry-After": "5"})
    response.headers["X-Model-Versions"] = models.header()
    return models


Store = Annotated[ServingStore, Depends(get_store)]
Models = Annotated[ServedModels, Depends(get_models)]
