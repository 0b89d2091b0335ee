"""The FastAPI scoring service: ``create_app(settings)``; ``crm serve`` runs it under uvicorn.

The lifespan opens the serving store (never migrating it: a store behind Alembic's head leaves the
service up but not ready until a ``crm`` command upgrades it) and the key store, loads and warms up the
``@champion`` models, and starts a background task that reloads them when an alias moves (a failed
load keeps the old ones). Every request is counted and timed for ``/metrics``; logs carry method,
route template, status and duration, never bodies or query values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_analytics.serving import booking_rules
from crm_analytics.serving.booking_rules import BookingRules, BookingRulesMiddleware
from crm_analytics.serving.guest_lookup import NameIndex
from crm_analytics.serving.keys import KeyStore
from crm_analytics.serving.limits import BodyLimitMiddleware, RateLimitMiddleware
from crm_analytics.serving.models import ModelHolder
from crm_analytics.serving.problems import install_problem_handlers
from crm_analytics.serving.rankers import RankerCache
from crm_analytics.serving.routes import customers, feedback, health, offers, scores, segments
from crm_analytics.serving.shared_limits import SharedBuckets
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore
from crm_analytics.tracking import configure

log = logging.getLogger("crm_analytics.serving")
API_VERSION = "1.0.0"


def create_app(settings: Settings, *, load_models: bool = True) -> FastAPI:
    """The service on ``settings`` (``load_models=False`` for tests that load models themselves)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = ServingStore(settings.serving_store_url, statement_timeout_ms=5_000)
        app.state.key_store = KeyStore(app.state.store.engine)
        app.state.models = ModelHolder(configure(settings))
        app.state.rankers = RankerCache()
        app.state.names = NameIndex()
        if (problem := app.state.store.schema_problem()) is not None:  # migrating is the jobs' work
            log.error("serving store not ready: %s", problem)
        else:
            app.state.names.prepare(app.state.store, app.state.store.active_id())  # in the background
            _use_rules(app, booking_rules.load(app.state.store, settings.serving_checkin_window_days))
        reloader = None
        if load_models:
            await asyncio.to_thread(_first_load, app.state.models)
            reloader = asyncio.create_task(_reload_loop(app, settings.serving_reload_seconds))
        yield
        if reloader is not None:
            reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reloader
        app.state.store.engine.dispose()
        if app.state.shared_buckets is not None:
            await app.state.shared_buckets.close()

    app = FastAPI(
        title="crm-analytics",
        version=API_VERSION,
        summary="Offers and guest briefs at booking time, segment lists, scores and profiles.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.booking_rules = BookingRules(checkin_window_days=settings.serving_checkin_window_days)
    _render_openapi_with_rules(app)
    app.state.metrics_registry = CollectorRegistry()
    install_problem_handlers(app)  # before _instrument: its error middleware then sits inside the metering
    _instrument(app)
    for router in (
        offers.router,
        feedback.router,
        segments.router,
        scores.router,
        customers.router,
        health.router,
    ):
        app.include_router(router)
    app.add_middleware(BookingRulesMiddleware)  # bodies are validated against the served catalogue
    # the last added runs first: the rate limit answers before any body is read
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.serving_max_body_bytes)
    shared = SharedBuckets(settings.serving_redis_url) if settings.serving_redis_url else None
    app.state.shared_buckets = shared
    app.add_middleware(
        RateLimitMiddleware,
        per_minute=settings.serving_rate_per_minute,
        burst=settings.serving_rate_burst,
        exempt_paths=("/livez", "/readyz", "/metrics"),
        shared=shared,
    )
    return app


def _first_load(holder: ModelHolder) -> None:
    """Load the champions at start; a missing champion leaves the service up but not ready."""
    try:
        holder.load()
    except LookupError as exc:
        holder.last_error = str(exc)
        log.error("models not loaded: %s", exc)


def _use_rules(app: FastAPI, rules: BookingRules) -> None:
    """Validate bookings with ``rules`` from now on; the document is rendered again with them."""
    app.state.booking_rules = rules
    app.openapi_schema = None


def _render_openapi_with_rules(app: FastAPI) -> None:
    """Render the OpenAPI document with the app's booking rules (the catalogue's enums) and render it
    again each day (its examples are dated relative to today)."""
    render = app.openapi
    rendered_on: list[date] = []

    def openapi() -> dict[str, Any]:
        today = datetime.now(UTC).date()
        if rendered_on != [today]:
            app.openapi_schema, rendered_on[:] = None, [today]
        with booking_rules.using(app.state.booking_rules):
            return render()

    app.openapi = openapi  # type: ignore[method-assign]


async def _reload_loop(app: FastAPI, every_seconds: float) -> None:
    """Every ``every_seconds``: reload moved champions, and for a new snapshot start its name index and
    validate bookings against its hotels catalogue."""
    holder: ModelHolder = app.state.models
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(every_seconds)
        if await asyncio.to_thread(app.state.store.schema_problem) is None:  # tables there
            active = await asyncio.to_thread(app.state.store.active_id)
            app.state.names.prepare(app.state.store, active)
            if active != app.state.booking_rules.snapshot_id:
                window = settings.serving_checkin_window_days
                _use_rules(app, await asyncio.to_thread(booking_rules.load, app.state.store, window))
        if await asyncio.to_thread(holder.reload_if_moved):
            log.info("champions reloaded: %s", holder.current.header() if holder.current else "-")


def _instrument(app: FastAPI) -> None:
    """Count and time every request by route template (never by raw path: ids stay out of metrics)."""
    registry = app.state.metrics_registry
    requests = Counter(
        "crm_requests", "Requests by route and status", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "crm_request_seconds",
        "Request duration by route",
        ["method", "route"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        registry=registry,
    )
    app.add_middleware(MeteringMiddleware, requests=requests, latency=latency)


class MeteringMiddleware:
    """Pure ASGI (no per-request task as with ``@app.middleware``): counts, times and logs each request
    when the app has answered, by method, route template and status."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any response is a 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            method = scope["method"]
            self.requests.labels(method, template, str(status)).inc()
            self.latency.labels(method, template).observe(elapsed)
            log.info("%s %s %s %.1fms", method, template, status, elapsed * 1000)
