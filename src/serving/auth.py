"""Authentication by API key and authorisation by scope, as a FastAPI dependency.

A client sends its key as ``Authorization: Bearer <secret>`` or ``X-API-Key: <secret>``. Both
schemes are declared as security dependencies, so they show in the OpenAPI document. The secret is
never logged: log lines name the key by its public ``key_id``. The dependency is async: the key store
decides most secrets from memory, with no thread hop; only a stale key list is read again in a thread.

Abuse: failed authentications are counted per client address (``FailedAuthThrottle``: 429 once there
were too many, before the secret is looked up), and the per-key rate limit (``KeyRateLimit``) applies
once the key is known, by its id. The verified key and any scope it was denied go on ``request.state``
for the access log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from crm_analytics.serving.keys import SCOPES, ApiKey, KeyStore
from crm_analytics.serving.limits import FailedAuthThrottle, KeyRateLimit
from crm_analytics.serving.problems import ProblemError, not_ready

logger = logging.getLogger("crm_analytics.serving")

API_KEY_HEADER = "X-API-Key"
_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="An API key.")


def presented_secret(headers: Headers) -> str | None:
    """The secret a request presents: the bearer token, else the ``X-API-Key`` header."""
    scheme, token = get_authorization_scheme_param(headers.get("authorization"))
    if scheme.lower() == "bearer" and token:
        return token
    return headers.get(API_KEY_HEADER) or None


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401, "Unauthorized", detail, type_suffix="unauthorized", headers={"WWW-Authenticate": "Bearer"}
    )


def require(scope: str) -> Callable[..., ApiKey]:
    """A dependency that admits keys holding ``scope`` and returns the verified ``ApiKey``.

    No key, or an unknown or revoked one -> 401 (with ``WWW-Authenticate: Bearer``); a valid key
    without the scope -> 403. The key is also put on ``request.state.api_key``::

        AnalystKey = Annotated[ApiKey, Depends(require("scores"))]
    """
    if scope not in SCOPES:
        raise ValueError(f"scope: unknown scope {scope!r}; allowed: {', '.join(sorted(SCOPES))}")

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_api_key_header)],
    ) -> ApiKey:
        secret = bearer.credentials if bearer is not None else header_key
        if not secret:
            raise _unauthorized(
                f"Send an API key as 'Authorization: Bearer <key>' or '{API_KEY_HEADER}: <key>'."
            )
        served = getattr(request.app.state, "store", None)  # the keys live in the serving store
        if served is not None and (problem := served.schema_problem()) is not None:
            raise not_ready(problem)
        state = request.app.state
        failures: FailedAuthThrottle | None = getattr(state, "auth_failures", None)
        address = request.client.host if request.client else "unknown"
        if failures is not None:
            failures.blocked(address)
        store: KeyStore = state.key_store
        decided, key = store.cached_verdict(secret)
        if not decided:
            key = await run_in_threadpool(store.verify, secret)
        if key is None:
            if failures is not None:
                await failures.failed(address)
            raise _unauthorized("The API key is not valid or has been revoked.")
        request.state.api_key = key
        rate_limit: KeyRateLimit | None = getattr(state, "rate_limit", None)
        if rate_limit is not None:
            await rate_limit.check(key.key_id)
        if scope not in key.scopes:
            logger.info("key %s denied scope %s", key.key_id, scope)
            request.state.denied_scope = scope
            raise ProblemError(
                403, "Forbidden", f"This API key lacks the {scope!r} scope.", type_suffix="forbidden"
            )
        return key

    dependency.__name__ = f"require_{scope}"
    return dependency


def holds(scope: str) -> Callable[..., Awaitable[bool]]:
    """A dependency, listed after a ``require(...)`` one, answering whether the verified key also holds
    ``scope``: for parts of an answer only some keys may see (the guest brief in ``/v1/offers``)."""
    if scope not in SCOPES:
        raise ValueError(f"scope: unknown scope {scope!r}; allowed: {', '.join(sorted(SCOPES))}")

    async def dependency(request: Request) -> bool:
        key: ApiKey = request.state.api_key
        return scope in key.scopes

    dependency.__name__ = f"holds_{scope}"
    return dependency
