"""API keys with role-based scopes, stored hashed in the serving store (SQLite or PostgreSQL).

A key is shown once, at creation: ``crm_`` followed by 32 random bytes (URL-safe base64). The table
keeps only its SHA-256. A plain, unsalted fast hash is enough here because the secret carries 256
bits of entropy: nobody can guess or brute-force it from the hash, unlike a password, so a slow
salted KDF (bcrypt, argon2) would only cost time on every request. Looking the hash up by equality
leaks nothing useful through timing, since a caller cannot steer the hash of what they send.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from crm_analytics.errors import InvalidInputError
from crm_analytics.store.tables import api_keys

ROLES: dict[str, tuple[str, ...]] = {
    "marketing": ("segments",),
    "booking": ("offers", "feedback", "brief"),
    "analyst": ("scores", "customers", "models"),
    "admin": ("reload",),
}
SCOPES: frozenset[str] = frozenset(scope for scopes in ROLES.values() for scope in scopes)
SECRET_PREFIX = "crm_"
_MAX_CACHE = 10_000


@dataclass(frozen=True)
class ApiKey:
    """A key's public record: never the secret."""

    key_id: str
    name: str
    roles: tuple[str, ...]
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def scopes_of(roles: Iterable[str]) -> frozenset[str]:
    """The union of the roles' scopes (a role no longer in ``ROLES`` grants nothing)."""
    return frozenset(scope for role in roles for scope in ROLES.get(role, ()))


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not name.isprintable() or not name.strip():
        raise InvalidInputError("name must be 1-64 printable characters")
    return name


def validate_roles(roles: str | Iterable[str]) -> tuple[str, ...]:
    """Role names in ``ROLES`` order; a string is read as a comma-separated list."""
    items = roles.split(",") if isinstance(roles, str) else builtins.list(roles)
    wanted = {str(role).strip() for role in items} - {""}
    allowed = ", ".join(ROLES)
    unknown = sorted(wanted - ROLES.keys())
    if unknown:
        raise InvalidInputError(f"roles: unknown role {unknown[0]!r}; allowed: {allowed}")
    if not wanted:
        raise InvalidInputError(f"roles: give at least one of: {allowed}")
    return tuple(role for role in ROLES if role in wanted)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _to_key(row: sa.Row) -> ApiKey:
    roles = tuple(row.roles.split(","))
    created_at = _utc(row.created_at)
    assert created_at is not None
    return ApiKey(row.key_id, row.name, roles, scopes_of(roles), created_at, _utc(row.revoked_at))


class KeyStore:
    """Create, list, revoke and verify API keys in the ``api_keys`` table (created if missing).

    ``verify`` caches keys that verified for ``cache_ttl`` seconds so the request path does not
    query the database every time. A revocation made through this instance takes effect at once;
    one made elsewhere (the CLI, another worker) takes effect within ``cache_ttl``. ``0`` disables
    the cache. Unknown secrets are not cached, so random guesses cannot fill memory.
    """

    def __init__(
        self, engine: sa.Engine, *, cache_ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if cache_ttl < 0:
            raise ValueError("cache_ttl must be >= 0 seconds")
        self.engine = engine
        self.cache_ttl = cache_ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, roles: str | Iterable[str]) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not stored and cannot be shown again."""
        name = validate_name(name)
        role_names = validate_roles(roles)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        created_at = datetime.now(UTC)
        for _attempt in range(5):  # 32-bit ids: a clash is rare, retry it
            key_id = "k_" + secrets.token_hex(4)
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        api_keys.insert().values(
                            key_id=key_id,
                            name=name,
                            roles=",".join(role_names),
                            secret_sha256=hash_secret(secret),
                            created_at=created_at,
                        )
                    )
            except sa.exc.IntegrityError:
                continue
            key = ApiKey(key_id, name, role_names, scopes_of(role_names), created_at)
            return key, secret
        raise RuntimeError("could not allocate a unique key id")

    def list(self) -> builtins.list[ApiKey]:
        """All keys, revoked ones included, oldest first."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        with self.engine.connect() as conn:
            return [_to_key(row) for row in conn.execute(query)]

    def revoke(self, key_id: str) -> None:
        """Revoke a key for good; revoking it again keeps the first time. Unknown id -> LookupError."""
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(api_keys.c.key_id).where(api_keys.c.key_id == key_id)).first()
            if found is None:
                raise LookupError(f"unknown API key id {key_id!r}")
            conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        with self._lock:
            for digest in [d for d, (_, key) in self._cache.items() if key.key_id == key_id]:
                del self._cache[digest]

    def cached(self, secret: str) -> ApiKey | None:
        """The key if it verified within ``cache_ttl`` (no database access), else None."""
        if not self.cache_ttl or not secret.startswith(SECRET_PREFIX) or len(secret) > 128:
            return None
        with self._lock:
            hit = self._cache.get(hash_secret(secret))
        return hit[1] if hit is not None and hit[0] > self._clock() else None

    def verify(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None (unknown or revoked)."""
        if not secret.startswith(SECRET_PREFIX) or len(secret) > 128:
            return None
        if (key := self.cached(secret)) is not None:
            return key
        digest = hash_secret(secret)
        now = self._clock()
        query = sa.select(api_keys).where(api_keys.c.secret_sha256 == digest, api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        key = _to_key(row)
        if self.cache_ttl:
            with self._lock:
                if len(self._cache) >= _MAX_CACHE:
                    self._cache = {d: hit for d, hit in self._cache.items() if hit[0] > now}
                    if len(self._cache) >= _MAX_CACHE:
                        self._cache.clear()
                self._cache[digest] = (now + self.cache_ttl, key)
        return key
