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
    "admin": ("keys", "reload"),
}
SCOPES: frozenset[str] = frozenset(scope for scopes in ROLES.values() for scope in scopes)
SECRET_PREFIX = "crm_"


@dataclass(frozen=True)
class ApiKey:
    """A key's public record: never the secret."""

    key_id: str
    name: str
    roles: tuple[str, ...]
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None
    hotels: frozenset[str] | None = None  # the hotels it may book for; None: every hotel

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def serves_hotel(self, hotel_id: str) -> bool:
        return self.hotels is None or hotel_id in self.hotels


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


def validate_hotels(hotels: Iterable[str] | None) -> tuple[str, ...] | None:
    """Hotel ids, sorted and without repeats; None (every hotel) stays None; an empty list is refused."""
    if hotels is None:
        return None
    wanted = sorted({str(h).strip() for h in hotels} - {""})
    if not wanted:
        raise InvalidInputError("hotels: give at least one hotel id")
    for hotel in wanted:
        if len(hotel) > 64 or not hotel.isprintable() or "," in hotel:
            raise InvalidInputError("hotels: a hotel id is 1-64 printable characters without commas")
    return tuple(wanted)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _to_key(row: sa.Row) -> ApiKey:
    roles = tuple(row.roles.split(","))
    created_at = _utc(row.created_at)
    assert created_at is not None
    hotels = frozenset(row.hotels.split(",")) if row.hotels else None
    return ApiKey(row.key_id, row.name, roles, scopes_of(roles), created_at, _utc(row.revoked_at), hotels)


class KeyStore:
    """Create, list, revoke and verify API keys in the ``api_keys`` table (created if missing).

    With ``cache_ttl`` > 0 the store keeps every active key's hash in memory (one query reads them all,
    a handful of rows), so verifying a secret costs no database access: a known hash is that key, an
    unknown one is refused at once. The list is read again when older than ``cache_ttl``, or on a miss
    once it is older than ``miss_reload`` seconds, so random secrets cost at most one query per
    ``miss_reload`` whatever their number, and a key created elsewhere (the CLI, another worker) verifies
    within that time. A revocation made through this instance takes effect at once; one made elsewhere
    within ``cache_ttl``. ``0`` disables the cache: every secret is looked up by its hash.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        cache_ttl: float = 5.0,
        miss_reload: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_ttl < 0:
            raise ValueError("cache_ttl must be >= 0 seconds")
        self.engine = engine
        self.cache_ttl = cache_ttl
        self.miss_reload = min(miss_reload, cache_ttl)
        self._clock = clock
        self._known: dict[str, ApiKey] = {}  # secret hash -> active key, every active key
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def create(
        self, name: str, roles: str | Iterable[str], hotels: Iterable[str] | None = None
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (the secret is not stored and cannot be shown again); ``hotels``:
        the only hotels it may book for (default: every hotel)."""
        name = validate_name(name)
        role_names = validate_roles(roles)
        hotel_ids = validate_hotels(hotels)
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
                            hotels=",".join(hotel_ids) if hotel_ids else None,
                        )
                    )
            except sa.exc.IntegrityError:
                continue
            bound = frozenset(hotel_ids) if hotel_ids else None
            key = ApiKey(key_id, name, role_names, scopes_of(role_names), created_at, hotels=bound)
            with self._lock:
                self._known[hash_secret(secret)] = key
            return key, secret
        raise RuntimeError("could not allocate a unique key id")

    def list(self) -> builtins.list[ApiKey]:
        """All keys, revoked ones included, oldest first."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        with self.engine.connect() as conn:
            return [_to_key(row) for row in conn.execute(query)]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good (returned as revoked); revoking it again keeps the first time. Unknown
        id -> LookupError."""
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(api_keys.c.key_id).where(api_keys.c.key_id == key_id)).first()
            if found is None:
                raise LookupError(f"unknown API key id {key_id!r}")
            conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            revoked = _to_key(conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).one())
        with self._lock:
            self._known = {d: key for d, key in self._known.items() if key.key_id != key_id}
        return revoked

    def bind(self, key_id: str, hotels: Iterable[str]) -> ApiKey:
        """Bind a key to these hotels (replacing any earlier binding): it books for them only, in this
        worker at once and in the others within ``cache_ttl``. Unknown id -> LookupError."""
        hotel_ids = validate_hotels(hotels)
        assert hotel_ids is not None
        with self.engine.begin() as conn:
            updated = conn.execute(
                api_keys.update().where(api_keys.c.key_id == key_id).values(hotels=",".join(hotel_ids))
            )
            if updated.rowcount == 0:
                raise LookupError(f"unknown API key id {key_id!r}")
            bound = _to_key(conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).one())
        with self._lock:
            self._known = {d: bound if key.key_id == key_id else key for d, key in self._known.items()}
        return bound

    def cached_verdict(self, secret: str) -> tuple[bool, ApiKey | None]:
        """``(True, key or None)`` when memory alone decides (no database access), else ``(False, None)``:
        then ``verify`` (in a thread) reads the keys again."""
        if not _well_formed(secret):
            return True, None
        if not self.cache_ttl:
            return False, None
        age = self._clock() - self._loaded_at
        with self._lock:
            key = self._known.get(hash_secret(secret))
        if age < self.cache_ttl and (key is not None or age < self.miss_reload):
            return True, key
        return False, None

    def verify(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None (unknown or revoked)."""
        decided, key = self.cached_verdict(secret)
        if decided:
            return key
        digest = hash_secret(secret)
        if not self.cache_ttl:
            query = sa.select(api_keys).where(
                api_keys.c.secret_sha256 == digest, api_keys.c.revoked_at.is_(None)
            )
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
            return None if row is None else _to_key(row)
        loaded_at = self._clock()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).where(api_keys.c.revoked_at.is_(None))).all()
        with self._lock:
            self._known = {row.secret_sha256: _to_key(row) for row in rows}
            self._loaded_at = loaded_at
            return self._known.get(digest)


def _well_formed(secret: str) -> bool:
    """Only what ``create`` hands out can be a key: anything else is refused without a look-up."""
    return secret.startswith(SECRET_PREFIX) and len(secret) <= 128
