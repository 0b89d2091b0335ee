"""The request body size limit (pure ASGI middleware) and the token buckets behind the rate limits.

Add the middleware after ``install_problem_handlers(app)``: ``app.add_middleware(BodyLimitMiddleware,
max_bytes=64 * 1024)``. The buckets are spent by ``auth.require`` once it knows who is calling: a
verified key spends from its key's bucket (``KeyRateLimit``), a failed authentication from its client
address's (``FailedAuthThrottle``), so random secrets share their sender's bucket instead of each
getting a fresh one.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_analytics.serving.problems import ProblemError, problem_response
from crm_analytics.serving.shared_limits import SharedBuckets


async def _reply_413(scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
    response = problem_response(
        413,
        "Content Too Large",
        f"The request body exceeds the limit of {max_bytes} bytes.",
        type_suffix="body-too-large",  # before routing: no route template to name
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


class TokenBuckets:
    """A token bucket per caller: ``burst`` tokens at once, refilled at ``rate`` tokens per second.

    ``take`` spends one and answers 0.0 (allowed) or the seconds until a token is free. With ``shared``
    (Redis) every worker and host spends from the same buckets; without it, or while Redis does not
    answer, buckets live in this process and each worker enforces its own limit. ``max_callers``
    bounds memory: the least recently seen local buckets are dropped beyond it. One event loop calls
    ``take_local`` without awaiting between reading and updating a bucket, so no lock is needed.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 100_000,
        shared: SharedBuckets | None = None,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_callers = max_callers
        self.shared = shared
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take_local(self, caller: str) -> float:
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

    async def take(self, caller: str) -> float:
        wait = await self.shared.take(caller, self.rate, self.burst) if self.shared else None
        return self.take_local(caller) if wait is None else wait


def too_many_requests(detail: str, wait: float) -> ProblemError:
    """429 with ``Retry-After`` in whole seconds (>= 1)."""
    retry_after = max(1, math.ceil(wait))
    return ProblemError(
        429,
        "Too Many Requests",
        f"{detail}; retry after {retry_after} s.",
        type_suffix="rate-limited",
        headers={"Retry-After": str(retry_after)},
    )


class KeyRateLimit:
    """Requests per minute per verified API key (by its public id), ``burst`` at once."""

    def __init__(self, per_minute: int, burst: int, **options: Any) -> None:
        if per_minute < 1 or burst < 1:
            raise ValueError("per_minute and burst must be >= 1")
        self.buckets = TokenBuckets(per_minute / 60.0, burst, **options)

    async def check(self, key_id: str) -> None:
        if (wait := await self.buckets.take("key:" + key_id)) > 0:
            raise too_many_requests("Rate limit exceeded", wait)


class FailedAuthThrottle:
    """At most ``failures`` failed authentications per ``window_seconds`` from one client address.

    Each failure spends a token; once none is left the address is refused (429) before its secret is
    even looked up, until a token is back. The refusal is remembered in this worker (``blocked``), so a
    blocked address costs no Redis round trip either.
    """

    def __init__(
        self,
        failures: int,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 100_000,
        shared: SharedBuckets | None = None,
    ) -> None:
        if failures < 1 or window_seconds <= 0:
            raise ValueError("failures must be >= 1 and window_seconds > 0")
        self.buckets = TokenBuckets(
            failures / window_seconds, failures, clock=clock, max_callers=max_callers, shared=shared
        )
        self.clock = clock
        self.max_callers = max_callers
        self._blocked_until: OrderedDict[str, float] = OrderedDict()

    def blocked(self, address: str) -> None:
        """Raise 429 while ``address`` has no failures left."""
        until = self._blocked_until.get(address)
        if until is None:
            return
        if (wait := until - self.clock()) > 0:
            raise too_many_requests("Too many failed authentications from this address", wait)
        del self._blocked_until[address]

    async def failed(self, address: str) -> None:
        """Spend a failure; raise 429 (instead of the 401) when it was one too many."""
        wait = await self.buckets.take("authfail:" + address)
        if wait > 0:
            self._blocked_until[address] = self.clock() + wait
            self._blocked_until.move_to_end(address)
            if len(self._blocked_until) > self.max_callers:
                self._blocked_until.popitem(last=False)
            raise too_many_requests("Too many failed authentications from this address", wait)
