"""Request body size limit and per-key rate limit, as pure ASGI middleware answering with problems.

Add them after ``install_problem_handlers(app)``; the one added last runs first::

    app.add_middleware(BodyLimitMiddleware, max_bytes=64 * 1024)
    app.add_middleware(RateLimitMiddleware, per_minute=600, burst=60)
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_analytics.serving.auth import presented_secret
from crm_analytics.serving.problems import problem_response
from crm_analytics.serving.shared_limits import SharedBuckets


async def _reply_413(scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
    response = problem_response(
        413,
        "Content Too Large",
        f"The request body exceeds the limit of {max_bytes} bytes.",
        instance=scope.get("path"),
        type_suffix="body-too-large",
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``, before anything parses them.

    A declared ``Content-Length`` over the limit is refused without reading. Otherwise the body
    (chunked ones included) is read here and counted chunk by chunk; the app only gets it, replayed
    as one message, once it is whole and within the limit, so at most ``max_bytes`` are buffered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await _reply_413(scope, receive, send, self.max_bytes)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                first: Message = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _reply_413(scope, receive, send, self.max_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        await self.app(scope, replay, send)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimitMiddleware:
    """Token bucket per caller: ``burst`` requests at once, refilled at ``per_minute``.

    The caller is the API key presented (kept only as a SHA-256 of the header value, so no secret
    is held); requests without a key share one bucket per client IP. Over the limit -> 429 problem
    with ``Retry-After`` (whole seconds, >= 1). With ``shared`` (Redis) every worker and host spends
    from the same buckets; without it, or while Redis does not answer, buckets live in this process
    and each worker enforces its own limit. ``max_callers`` bounds memory: the least recently seen
    local buckets are dropped beyond it. One event loop calls ``take`` without awaiting between
    reading and updating a bucket, so no lock is needed.
    """

    def __init__(
        self,
        app: ASGIApp,
        per_minute: int,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        exempt_paths: Collection[str] = (),
        max_callers: int = 100_000,
        shared: SharedBuckets | None = None,
    ) -> None:
        if per_minute < 1 or burst < 1:
            raise ValueError("per_minute and burst must be >= 1")
        self.app = app
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = burst
        self.clock = clock
        self.exempt_paths = frozenset(exempt_paths)
        self.max_callers = max_callers
        self.shared = shared
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def caller(self, scope: Scope) -> str:
        secret = presented_secret(Headers(scope=scope))
        if secret is not None:
            return "key:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()
        client = scope.get("client")
        return "ip:" + (client[0] if client else "unknown")

    def take(self, caller: str) -> float:
        """Spend a token for ``caller``: 0.0 if allowed, else the seconds until one is available."""
        now = self.clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _Bucket(float(self.burst), now)
            if len(self._buckets) > self.max_callers:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(caller)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        caller = self.caller(scope)
        wait = await self.shared.take(caller, self.rate, self.burst) if self.shared else None
        if wait is None:
            wait = self.take(caller)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        response = problem_response(
            429,
            "Too Many Requests",
            f"Rate limit exceeded; retry after {retry_after} s.",
            instance=scope.get("path"),
            type_suffix="rate-limited",
            headers={"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)
