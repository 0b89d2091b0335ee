"""Request metrics, the access log (``store/access_log.py``) and ``Cache-Control`` for every answer, in
one pure ASGI middleware. Routes name the customers an answer reads with ``note_customers_read``.

Metrics: counts and latency by method, route template and status. Under ``crm serve`` every worker
writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, set
by the command before the workers start), and ``/metrics`` sums every worker's files, so whichever
worker answers shows the whole service.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_analytics.store.access_log import AccessLog

log = logging.getLogger("crm_analytics.serving")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNLOGGED_PATHS = ("/livez", "/readyz", "/metrics")  # probes, polled every few seconds: no audit value
CACHEABLE_PREFIX = "/docs/static/"  # the packaged Swagger UI files; every other answer: no-store


def note_customers_read(request: Request, customer_ids: Iterable[str]) -> None:
    """Record, for the access log, the customers whose data this answer carries (our ids only)."""
    read: list[str] = request.scope.setdefault("state", {}).setdefault("customers_read", [])
    read.extend(customer_ids)


class RequestMetrics:
    """The request counter and latency histogram on ``registry``."""

    def __init__(self, registry: CollectorRegistry, shared: Iterable[Collector] = ()) -> None:
        self.registry = registry
        self.shared = list(shared)  # the same in every worker (read from the store): added once
        for collector in self.shared:
            registry.register(collector)
        self.requests = Counter(
            "crm_requests", "Requests by route and status", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "crm_request_seconds",
            "Request duration by route",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )

    def exposition(self) -> bytes:
        """The text ``/metrics`` answers: every worker's samples in multiprocess mode, else this one's."""
        if os.environ.get(MULTIPROC_ENV):
            combined = CollectorRegistry()
            MultiProcessCollector(combined)
            for collector in self.shared:
                combined.register(collector)
            return generate_latest(combined)
        return generate_latest(self.registry)


class MeteringMiddleware:
    """Pure ASGI (no per-request task as with ``@app.middleware``): when the app has answered, counts
    and times the request, writes its access-log line, and marks the answer ``Cache-Control: no-store``
    (answers carry personal data or keys; only the packaged docs files may be cached)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics, access_log: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

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
                if not scope["path"].startswith(CACHEABLE_PREFIX):
                    MutableHeaders(scope=message).setdefault("Cache-Control", "no-store")
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            log.info("%s %s %s %.1fms", method, template, status, elapsed * 1000)
            if self.access_log is not None and scope["path"] not in UNLOGGED_PATHS:
                try:
                    self.access_log.write(_access_record(scope, method, template, status, elapsed))
                except OSError as exc:  # a full disk must not turn answers into errors: say so loudly
                    log.error("access log not written: %s", type(exc).__name__)


def _access_record(scope: Scope, method: str, route: str, status: int, elapsed: float) -> dict[str, Any]:
    """What the access log keeps of a request: no raw path, query, header or body."""
    state = scope.get("state") or {}
    key = state.get("api_key")
    client = scope.get("client")
    record: dict[str, Any] = {
        "key_id": key.key_id if key else None,
        "roles": list(key.roles) if key else [],
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
        "client": client[0] if client else None,
        "customers": sorted(set(state.get("customers_read", ()))),
    }
    if denied := state.get("denied_scope"):
        record["denied_scope"] = denied
    return record
