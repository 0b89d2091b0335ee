"""How many distinct guests one API key may read per hour (``CRM_SERVING_GUESTS_PER_KEY_HOUR``).

A booking key recognises guests by e-mail, phone or name, and a recognised guest's answer carries what
the desk must know about them. A desk reads a few guests an hour; a key reading hundreds is someone
walking the guest list. Each clock hour, a key may read ``per_hour`` distinct guests (reading one again
is free). The read that would be one too many is refused (429), and so is every identified request of
that key for the rest of the hour: had only recognised guests been refused, a 429 would tell which
e-mails belong to guests. Refusals count in ``/metrics`` (``crm_guest_quota_refusals_total`` by key id).

The count is per worker, or shared by every worker and host through Redis when
``CRM_SERVING_REDIS_URL`` is set: one ``EXISTS`` of the key's refusal flag per identified request, so a
refusal anywhere holds everywhere, and one Lua script per recognised guest (the guests' ids go there as
keyed hashes, HMAC-SHA256 under a key derived from the deployment's erasure key, so a list of our
customer ids does not tell whom a desk read; they expire with the hour). While Redis cannot be reached
each worker counts on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from crm_analytics.serving.limits import too_many_requests
from crm_analytics.serving.shared_limits import SharedBuckets

HOUR = 3600
# KEYS[1] the key's set of guests this hour, KEYS[2] its refusal flag; ARGV: the guest (hashed), the
# quota, seconds to the end of the hour. Returns 1 (allowed) or 0 (refused).
NOTE_GUEST = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class GuestQuota:
    """``per_hour`` distinct guests per key and clock hour; ``shared``: count in Redis."""

    def __init__(
        self,
        per_hour: int,
        registry: CollectorRegistry,
        *,
        shared: SharedBuckets | None = None,
        pseudonym_key: bytes = b"",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``pseudonym_key``: the secret the guests' ids are hashed with before they go to Redis (the
        same in every worker and host)."""
        if per_hour < 1:
            raise ValueError("per_hour must be >= 1")
        self._pseudonym_key = hmac.new(pseudonym_key, b"crm-guest-quota", hashlib.sha256).digest()
        self.per_hour = per_hour
        self.shared = shared
        self.clock = clock
        self.refusals = Counter(
            "crm_guest_quota_refusals",
            "Requests refused because their key read more distinct guests this hour than allowed",
            ["key_id"],
            registry=registry,
        )
        self._script = shared.client.register_script(NOTE_GUEST) if shared else None
        self._hour = -1
        self._seen: dict[str, set[str]] = {}  # key id -> guests read this hour (this worker)
        self._refused: set[str] = set()  # key ids refused for the rest of this hour

    async def check(self, key_id: str) -> None:
        """Before the guest is looked up: 429 while ``key_id`` is refused for this hour (in this worker,
        or, with Redis, in any: otherwise another worker would still answer unknown guests 200)."""
        hour = self._roll()
        if key_id not in self._refused and self.shared is not None and self.shared.available():
            try:
                refused = await self.shared.client.exists(self._redis_keys(hour, key_id)[1])
            except (RedisError, OSError) as exc:
                self.shared.went_down(exc)
                refused = 0
            if refused and hour == self._hour:
                self._refused.add(key_id)
        if key_id in self._refused:
            self._refuse(key_id)

    async def note(self, key_id: str, customer_id: str) -> None:
        """A guest about to be read: allowed, or 429 (and the key refused until the hour ends)."""
        hour = self._roll()
        allowed = await self._note_shared(hour, key_id, customer_id)
        if allowed is None:
            allowed = self._note_here(key_id, customer_id)
        if not allowed:
            if hour == self._hour:  # the hour did not turn while Redis answered
                self._refused.add(key_id)
            self._refuse(key_id)

    def _note_here(self, key_id: str, customer_id: str) -> bool:
        seen = self._seen.setdefault(key_id, set())
        if customer_id in seen:
            return True
        if len(seen) >= self.per_hour:
            return False
        seen.add(customer_id)
        return True

    async def _note_shared(self, hour: int, key_id: str, customer_id: str) -> bool | None:
        """Redis's verdict, or None when it did not answer (this worker counts on its own then)."""
        if self._script is None or self.shared is None or not self.shared.available():
            return None
        guest = self.pseudonym(customer_id)
        try:
            allowed = await self._script(
                keys=list(self._redis_keys(hour, key_id)), args=[guest, self.per_hour, self._left()]
            )
        except (RedisError, OSError) as exc:
            self.shared.went_down(exc)
            return None
        return bool(int(allowed))

    def pseudonym(self, customer_id: str) -> str:
        """What Redis holds for the guest: a keyed hash of our id."""
        return hmac.new(self._pseudonym_key, customer_id.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _redis_keys(hour: int, key_id: str) -> tuple[str, str]:
        """The key's set of guests this hour, and its refusal flag (``NOTE_GUEST``'s KEYS)."""
        seen = f"crm:guests:{hour}:{key_id}"
        return seen, seen + ":refused"

    def _roll(self) -> int:
        """A new clock hour: every count starts again. Returns the hour."""
        hour = int(self.clock() // HOUR)
        if hour != self._hour:
            self._hour, self._seen, self._refused = hour, {}, set()
        return hour

    def _left(self) -> int:
        return max(1, HOUR - int(self.clock() % HOUR))

    def _refuse(self, key_id: str) -> None:
        self.refusals.labels(key_id=key_id).inc()
        raise too_many_requests(
            f"This API key read more than {self.per_hour} distinct guests this hour", self._left()
        )
