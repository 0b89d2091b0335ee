"""The FastAPI scoring service: ``create_app(settings)``; ``crm serve`` runs it under uvicorn.

The lifespan opens the serving store (never migrating it: a store behind Alembic's head leaves the
service up but not ready until a ``crm`` command upgrades it), the key store and the decision log's
writer, loads and warms up the ``@champion`` models, and starts a background task that reloads them
when an alias moves (a failed load keeps the old ones). Every request is counted and timed for
``/metrics`` and written to the access log (``serving/metering.py``); logs carry method, route template,
status and duration, never bodies or query values. Swagger UI is served from the installed package
(``serving/docs.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from crm_analytics.ingest.suppression import erasure_key
from crm_analytics.serving import booking_rules, heap
from crm_analytics.serving.booking_rules import BookingRules, BookingRulesMiddleware
from crm_analytics.serving.docs import install_docs
from crm_analytics.serving.guest_lookup import NameIndex
from crm_analytics.serving.guest_quota import GuestQuota
from crm_analytics.serving.keys import KeyStore
from crm_analytics.serving.limits import BodyLimitMiddleware, FailedAuthThrottle, KeyRateLimit
from crm_analytics.serving.metering import MeteringMiddleware, RequestMetrics
from crm_analytics.serving.models import ModelHolder
from crm_analytics.serving.monitoring_gauges import MonitoringCollector
from crm_analytics.serving.problems import install_problem_handlers
from crm_analytics.serving.rankers import RankerCache
from crm_analytics.serving.routes import admin, customers, feedback, health, keys, offers, scores, segments
from crm_analytics.serving.shared_limits import SharedBuckets
from crm_analytics.settings import Settings
from crm_analytics.store import DecisionWriter, ServingStore
from crm_analytics.store.access_log import AccessLog
from crm_analytics.store.sqlite_decision_log import SqliteDecisionLog, suits
from crm_analytics.tracking import configure

log = logging.getLogger("crm_analytics.serving")
API_VERSION = "1.0.0"


def create_app(settings: Settings, *, load_models: bool = True, freeze_heap: bool = False) -> FastAPI:
    """The service on ``settings`` (``load_models=False`` for tests that load models themselves).
    ``freeze_heap`` (a worker of ``crm serve``): the long-lived heap is frozen once models are loaded and
    once a name index is built (``serving/heap.py``); not in a test process, whose heap is the test run's."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def settle_heap() -> None:  # the ranker holds the replaced models or catalogue: they go too
            app.state.rankers.clear()
            heap.settle()

        on_change = settle_heap if freeze_heap else None
        app.state.store = ServingStore(
            settings.serving_store_url,
            statement_timeout_ms=5_000,
            lock_wait_ms=settings.serving_store_lock_wait_ms,
        )
        app.state.key_store = KeyStore(app.state.store.engine)
        app.state.decisions = _decision_log(app.state.store, settings)
        app.state.models = ModelHolder(configure(settings), on_change=on_change)
        app.state.rankers = RankerCache()
        app.state.names = NameIndex(on_built=on_change)
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
        await asyncio.to_thread(app.state.decisions.close)  # queued decisions are written first
        app.state.store.engine.dispose()
        access_log.close()
        if app.state.shared_buckets is not None:
            await app.state.shared_buckets.close()

    app = FastAPI(
        title="crm-analytics",
        version=API_VERSION,
        summary="Offers and guest briefs at booking time, segment lists, scores and profiles.",
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_docs, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.booking_rules = BookingRules(checkin_window_days=settings.serving_checkin_window_days)
    _render_openapi_with_rules(app)
    # drift, data quality, realized performance and the snapshot's age, from the serving store
    gauges = MonitoringCollector(lambda: getattr(app.state, "store", None))
    app.state.metrics = RequestMetrics(CollectorRegistry(), shared=[gauges])
    access_log = AccessLog(settings.access_log)
    install_problem_handlers(app)  # before the metering: its error middleware then sits inside
    app.add_middleware(MeteringMiddleware, metrics=app.state.metrics, access_log=access_log)
    for router in (
        offers.router,
        feedback.router,
        segments.router,
        scores.router,
        customers.router,
        keys.router,
        admin.router,
        health.router,
    ):
        app.include_router(router)
    install_docs(app)
    app.add_middleware(BookingRulesMiddleware)  # bodies are validated against the served catalogue
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.serving_max_body_bytes)
    # spent by auth.require once it knows the caller: per key id, and per address for failed keys
    shared = SharedBuckets(settings.serving_redis_url) if settings.serving_redis_url else None
    app.state.shared_buckets = shared
    app.state.rate_limit = KeyRateLimit(
        settings.serving_rate_per_minute, settings.serving_rate_burst, shared=shared
    )
    app.state.auth_failures = FailedAuthThrottle(
        settings.serving_auth_failures, settings.serving_auth_failure_window_seconds, shared=shared
    )
    app.state.guest_quota = GuestQuota(
        settings.serving_guests_per_key_hour,
        app.state.metrics.registry,
        shared=shared,
        pseudonym_key=erasure_key(settings) if shared else b"",  # only Redis sees the pseudonyms
    )
    return app


def _first_load(holder: ModelHolder) -> None:
    """Load the champions at start (an earlier version for one that does not load); a family with no
    loadable version, or an unreachable registry, leaves the service up but not ready."""
    try:
        holder.load()
    except LookupError as exc:
        holder.last_error = str(exc)
        log.error("models not loaded: %s", exc)
    except Exception as exc:  # the registry unreachable, a warm-up failing: not ready, not dead
        holder.last_error = type(exc).__name__
        log.error("models not loaded (%s)", type(exc).__name__)


def _decision_log(store: ServingStore, settings: Settings) -> SqliteDecisionLog | DecisionWriter:
    """Where ``/v1/offers`` answers are logged: on the event loop for a SQLite store in a file
    (``store.sqlite_decision_log``), else by the group-commit thread (PostgreSQL merges concurrent
    commits itself; the thread keeps its round trips off the loop)."""
    if suits(store.engine):
        return SqliteDecisionLog(store.engine, settings.serving_store_lock_wait_ms)
    return DecisionWriter(store)


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
