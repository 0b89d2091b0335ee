"""RFC 9457 problem details: every error the service returns is ``application/problem+json``.

Error bodies never echo the request: ``instance`` is the matched route's template
(``/v1/customers/{customer_id}``), never the raw path, which may carry an e-mail used as an id, and is
left out when no route matched; validation errors keep pydantic's location and message but drop its
``input`` and ``ctx`` (where the offending value lives); unexpected exceptions become a generic 500
whose log line names only the exception type, the code location and the route template, never the
exception's message (it may hold personal data).

JSON numbers: FastAPI parses bodies with Python's ``json``, which accepts ``NaN``, ``Infinity`` and
``1e999`` (as ``inf``). Request models must set ``ConfigDict(allow_inf_nan=False, extra="forbid")`` so
pydantic rejects them (422); integers longer than Python's 4300-digit limit fail while parsing (400).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping, Sequence
from email.message import Message as _EmailMessage
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_analytics.serving.schemas import Problem

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://crm-analytics.invalid/problems/"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"

logger = logging.getLogger("crm_analytics.serving")

# A location part is shown only if it looks like a field name or an index; anything else (an
# unknown key such as an e-mail address sent as a field name) is masked, since it is client input.
_SAFE_LOC_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class ProblemError(Exception):
    """Raise from routes and dependencies to answer with a problem body.

    ``detail`` is sent to the client as is: it must not contain personal data.
    ``type_suffix`` (a slug such as ``"forbidden"``) becomes ``PROBLEM_TYPE_BASE + slug``;
    without it the type is ``about:blank`` and ``title`` should be the HTTP status phrase.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        type_suffix: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type_suffix = type_suffix
        self.headers = dict(headers or {})


def problem_body(
    status: int,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    type_suffix: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The problem document as a dict (extension members from ``extra`` follow the standard ones)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + type_suffix if type_suffix else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    type_suffix: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A ``JSONResponse`` with media type ``application/problem+json``.

    ``instance`` is the route template; pass ``route_template(scope)``.
    """
    body = problem_body(status, title, detail, instance=instance, type_suffix=type_suffix, **extra)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def route_template(scope: Scope) -> str | None:
    """The matched route's path template (None before routing or when nothing matched)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """``[{"field": "body.customer_id", "message": ...}]`` from pydantic errors: ``loc`` and ``msg`` only."""
    out = []
    for error in errors:
        parts = [
            str(part) if isinstance(part, int) or _SAFE_LOC_PART.fullmatch(str(part)) else "*"
            for part in error.get("loc", ())
        ]
        out.append({"field": ".".join(parts), "message": str(error.get("msg", "invalid value"))})
    return out


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.title,
        exc.detail,
        instance=route_template(request.scope),
        type_suffix=exc.type_suffix,
        headers=exc.headers,
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = _phrase(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # Starlette names the first route's methods only, not the path's
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(
        exc.status_code, phrase, detail, instance=route_template(request.scope), headers=headers
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on the request's path."""
    allowed: set[str] = set()
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            allowed.add(method)
    return sorted(allowed)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem_response(
            400,
            "Malformed JSON",
            "The request body is not valid JSON.",
            instance=route_template(request.scope),
            type_suffix="malformed-json",
        )
    return problem_response(
        422,
        "Validation failed",
        "The request does not match the expected schema; see errors.",
        instance=route_template(request.scope),
        type_suffix="validation-error",
        errors=validation_errors(errors),
    )


def _log_unhandled(exc: BaseException, route: str | None) -> None:
    """Log type, innermost code location and route: never the message, which may hold personal data."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    logger.error("unhandled %s at %s for %s", type(exc).__name__, where, route or "unmatched")


def internal_error_response(route: str | None) -> JSONResponse:
    return problem_response(
        500,
        "Internal Server Error",
        "The server could not complete the request.",
        instance=route,
        type_suffix="internal-error",
    )


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    route = route_template(request.scope)
    _log_unhandled(exc, route)
    return internal_error_response(route)


class UnhandledErrorMiddleware:
    """Turn any exception escaping the routes into a 500 problem and swallow it.

    Starlette's own ``Exception`` handler re-raises after responding, so the server would log the
    traceback, message included; this middleware keeps that log line free of request data.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            _log_unhandled(exc, route_template(scope))
            if not started:
                await internal_error_response(route_template(scope))(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error with a problem body, and say so in the OpenAPI document.

    Call before adding other middleware so ``UnhandledErrorMiddleware`` sits innermost; a catch-all
    ``Exception`` handler covers errors raised by the outer middleware too.
    """
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unhandled)
    app.add_middleware(UnhandledErrorMiddleware)
    render = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(render())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


MODELS_NOT_LOADED = ("models are not loaded yet", 5)
NO_SNAPSHOT = ("no scores yet; run `crm score`", 30)


def not_ready(reason: tuple[str, int] | str, retry_after: int = 30) -> ProblemError:
    """The one "not ready" answer: 503 with why and when to retry (``MODELS_NOT_LOADED``,
    ``NO_SNAPSHOT`` or another reason)."""
    detail, seconds = reason if isinstance(reason, tuple) else (reason, retry_after)
    return ProblemError(503, "Service Unavailable", detail, headers={"Retry-After": str(seconds)})


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own errors (404, 409, 503...), each a problem body."""
    return {status: _problem_doc(status) for status in statuses}


def _problem_doc(status: int) -> dict[str, Any]:
    return {
        "description": _phrase(status),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Document, in place, the errors every operation shares, as problem bodies.

    FastAPI's own 422 (``HTTPValidationError``, ``application/json``) is replaced, since
    ``_on_validation_error`` answers with a problem. An operation with a request body may also get
    400 (malformed JSON), 413 (``BodyLimitMiddleware``) and 415 (``require_json``); one that needs a
    key gets 401 and 403 (``auth.require``) and 429 (the rate limit exempts only keyless endpoints).
    Statuses a route documents itself (``responses=problem_responses(...)``) are kept.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _problem_doc(422)
            shared = [400, 413, 415] if "requestBody" in operation else []
            shared += [401, 403, 429] if operation.get("security") else []
            for status in shared:
                responses.setdefault(str(status), _problem_doc(status))
            operation["responses"] = dict(sorted(responses.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = _EmailMessage()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def require_json(request: Request) -> None:
    """Dependency for routes that take a JSON body: any other ``Content-Type`` -> 415 problem.

    Use as ``dependencies=[Depends(require_json)]`` on the route or router. Without it FastAPI
    leaves a non-JSON body unparsed and reports a confusing 422.
    """
    if not _is_json(request.headers.get("content-type")):
        raise ProblemError(
            415,
            "Unsupported Media Type",
            "Send the request body as application/json.",
            type_suffix="unsupported-media-type",
            headers={"Accept-Post": "application/json"},
        )
