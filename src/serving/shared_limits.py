"""Rate-limit buckets shared by every worker and host through Redis (``CRM_SERVING_REDIS_URL``).

Each caller's token bucket is one Redis hash, read and updated by a Lua script in one atomic step, with
Redis's clock, so workers on several machines spend the same tokens. The hash expires once it would
be full again, so idle callers cost nothing. When Redis cannot be reached the middleware falls back to
its own per-worker buckets (the service keeps answering, and still limits) for ``retry_after`` seconds
before trying Redis again, and logs it at most once a minute.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("crm_analytics.serving")

# KEYS[1] the bucket; ARGV: tokens per second, burst. Returns the seconds to wait (0: allowed), as text
# (Redis turns Lua numbers into integers).
TAKE_TOKEN = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, updated = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class SharedBuckets:
    """Token buckets in Redis: ``take`` answers 0.0 (allowed) or the seconds until a token is free,
    and None when Redis did not answer (the caller decides what to do then)."""

    def __init__(
        self, url: str, *, prefix: str = "crm:rate:", timeout: float = 0.05, retry_after: float = 5.0
    ) -> None:
        self.client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.prefix = prefix
        self.retry_after = retry_after
        self._script = self.client.register_script(TAKE_TOKEN)
        self._last_warning = float("-inf")
        self._down_until = float("-inf")  # no request waits for a timeout while Redis is known down

    async def take(self, caller: str, rate: float, burst: int) -> float | None:
        if not self.available():
            return None
        try:
            wait = await self._script(keys=[self.prefix + caller], args=[rate, burst])
        except (RedisError, OSError) as exc:
            self.went_down(exc)
            return None
        return float(wait)

    def available(self) -> bool:
        """False for ``retry_after`` seconds after Redis failed to answer."""
        return time.monotonic() >= self._down_until

    def went_down(self, exc: BaseException) -> None:
        """Redis did not answer: the callers count per worker for ``retry_after`` seconds (logged at
        most once a minute)."""
        now = time.monotonic()
        self._down_until = now + self.retry_after
        if now - self._last_warning > 60:
            self._last_warning = now
            log.warning("shared limits unavailable (%s); limiting per worker", type(exc).__name__)

    async def close(self) -> None:
        await self.client.aclose()
