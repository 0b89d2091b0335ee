"""API keys (hashed storage, roles, revocation) and the scope-checking auth dependency."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from crm_analytics.serving.auth import require
from crm_analytics.serving.keys import ROLES, ApiKey, KeyStore
from crm_analytics.serving.problems import install_problem_handlers
from crm_analytics.store import ServingStore
from tests.serving.test_problems_and_limits import assert_problem


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """The serving store on each backend: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'serving.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    eng = ServingStore(url).upgrade().engine  # the store with its schema, keys table included
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> KeyStore:
    return KeyStore(engine, cache_ttl=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- keys -----------------------------------------------------------------------------------------


def test_create_key_stores_only_the_hash(store: KeyStore, engine: sa.Engine) -> None:
    key, secret = store.create("booking desk", ["booking"])

    assert secret.startswith("crm_")
    assert len(secret) >= 40
    assert key.key_id.startswith("k_")
    assert len(key.key_id) == 10
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM api_keys")).all()
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0])
    assert secret not in stored
    assert secret.removeprefix("crm_") not in stored
    assert rows[0].secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()


def test_create_key_scopes_are_the_union_of_its_roles(store: KeyStore) -> None:
    key, _ = store.create("ops", "admin, analyst")

    assert key.roles == ("analyst", "admin")
    assert key.scopes == frozenset({"scores", "customers", "models", "keys", "reload"})
    assert key.created_at.tzinfo is not None
    assert key.active


def test_verify_key_returns_the_key_for_its_secret(store: KeyStore) -> None:
    key, secret = store.create("analyst", ["analyst"])

    verified = store.verify(secret)

    assert verified == key
    assert store.verify(secret + "x") is None
    assert store.verify("not-a-key") is None
    assert store.verify("") is None


def test_list_keys_shows_every_key_without_secrets(store: KeyStore) -> None:
    first, secret1 = store.create("marketing", ["marketing"])
    second, secret2 = store.create("booking", ["booking"])
    store.revoke(first.key_id)

    keys = store.list()

    assert [k.key_id for k in keys] == [first.key_id, second.key_id]
    assert all(isinstance(k, ApiKey) for k in keys)
    assert keys[0].revoked_at is not None
    assert keys[0].revoked_at.tzinfo is not None
    assert keys[1].revoked_at is None
    assert keys[0].scopes == frozenset(ROLES["marketing"])
    assert secret1 not in repr(keys)
    assert secret2 not in repr(keys)


def test_revoke_key_stops_it_verifying(store: KeyStore) -> None:
    key, secret = store.create("booking", ["booking"])

    store.revoke(key.key_id)
    store.revoke(key.key_id)  # idempotent

    assert store.verify(secret) is None


def test_revoke_key_unknown_id_names_it(store: KeyStore) -> None:
    with pytest.raises(LookupError, match="unknown API key id 'k_00000000'"):
        store.revoke("k_00000000")


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        (["owner"], "roles: unknown role 'owner'; allowed: marketing, booking, analyst, admin"),
        (["analyst", "root"], "roles: unknown role 'root'"),
        ([], "roles: give at least one of: marketing, booking, analyst, admin"),
        ("", "roles: give at least one of"),
    ],
)
def test_create_key_bad_roles_say_which(store: KeyStore, roles: list[str] | str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store.create("someone", roles)
    assert store.list() == []


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\there", "new\nline"])
def test_create_key_bad_name_is_rejected(store: KeyStore, name: str) -> None:
    with pytest.raises(ValueError, match="name must be 1-64 printable characters"):
        store.create(name, ["analyst"])


def test_verify_key_cache_sees_remote_revocation_after_ttl(engine: sa.Engine) -> None:
    clock = FakeClock()
    server = KeyStore(engine, cache_ttl=5.0, clock=clock)
    cli = KeyStore(engine, cache_ttl=0)  # e.g. `crm keys revoke` in another process
    key, secret = cli.create("analyst", ["analyst"])
    assert server.verify(secret) == key

    cli.revoke(key.key_id)

    assert server.verify(secret) == key  # still cached
    clock.now += 5.1
    assert server.verify(secret) is None


def test_revoke_key_through_same_store_drops_it_from_cache(engine: sa.Engine) -> None:
    server = KeyStore(engine, cache_ttl=60.0)
    key, secret = server.create("analyst", ["analyst"])
    assert server.verify(secret) == key

    server.revoke(key.key_id)

    assert server.verify(secret) is None


def test_create_key_store_rejects_negative_ttl(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="cache_ttl must be >= 0"):
        KeyStore(engine, cache_ttl=-1)


# --- auth -----------------------------------------------------------------------------------------


def make_app(store: KeyStore) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.key_store = store

    @app.get("/scores")
    def scores(request: Request, key: Annotated[ApiKey, Depends(require("scores"))]) -> dict[str, str]:
        return {"key_id": key.key_id, "state": request.state.api_key.key_id}

    @app.get("/segments")
    def segments(key: Annotated[ApiKey, Depends(require("segments"))]) -> dict[str, str]:
        return {"key_id": key.key_id}

    return app


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[TestClient, KeyStore]]:
    engine = ServingStore(f"sqlite:///{tmp_path / 'auth.db'}").upgrade().engine
    store = KeyStore(engine, cache_ttl=0)
    with TestClient(make_app(store)) as client:
        yield client, store
    engine.dispose()


def as_header(style: str, secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"} if style == "bearer" else {"X-API-Key": secret}


def test_get_scores_without_key_is_401(keyed: tuple[TestClient, KeyStore]) -> None:
    client, _ = keyed

    response = client.get("/scores")

    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["instance"] == "/scores"
    assert str(body["type"]).endswith("/unauthorized")


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_get_scores_unknown_key_is_401(keyed: tuple[TestClient, KeyStore], style: str) -> None:
    client, store = keyed
    store.create("analyst", ["analyst"])
    guess = "crm_" + "A" * 43

    response = client.get("/scores", headers=as_header(style, guess))

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert guess not in response.text


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_get_scores_revoked_key_is_401(keyed: tuple[TestClient, KeyStore], style: str) -> None:
    client, store = keyed
    key, secret = store.create("analyst", ["analyst"])
    store.revoke(key.key_id)

    response = client.get("/scores", headers=as_header(style, secret))

    assert_problem(response, 401)


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_get_scores_wrong_scope_is_403(keyed: tuple[TestClient, KeyStore], style: str) -> None:
    client, store = keyed
    _, secret = store.create("marketing", ["marketing"])

    response = client.get("/scores", headers=as_header(style, secret))

    body = assert_problem(response, 403)
    assert "'scores'" in str(body["detail"])
    assert secret not in response.text


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_get_scores_right_scope_is_200(keyed: tuple[TestClient, KeyStore], style: str) -> None:
    client, store = keyed
    key, secret = store.create("analyst", ["analyst", "marketing"])

    response = client.get("/scores", headers=as_header(style, secret))
    other = client.get("/segments", headers=as_header(style, secret))

    assert response.status_code == 200
    assert response.json() == {"key_id": key.key_id, "state": key.key_id}
    assert other.status_code == 200


def test_get_scores_non_bearer_authorization_is_401(keyed: tuple[TestClient, KeyStore]) -> None:
    client, store = keyed
    _, secret = store.create("analyst", ["analyst"])

    response = client.get("/scores", headers={"Authorization": f"Basic {secret}"})

    assert_problem(response, 401)


def test_get_scores_never_logs_the_secret(
    keyed: tuple[TestClient, KeyStore], caplog: pytest.LogCaptureFixture
) -> None:
    client, store = keyed
    _, marketing = store.create("marketing", ["marketing"])
    _, analyst = store.create("analyst", ["analyst"])
    caplog.set_level(logging.DEBUG)

    client.get("/scores", headers={"X-API-Key": marketing})
    client.get("/scores", headers={"Authorization": f"Bearer {analyst}"})
    client.get("/scores", headers={"X-API-Key": analyst + "x"})

    assert marketing not in caplog.text
    assert analyst not in caplog.text


def test_openapi_declares_both_key_schemes(keyed: tuple[TestClient, KeyStore]) -> None:
    client, _ = keyed

    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]

    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"


def test_require_unknown_scope_is_rejected() -> None:
    with pytest.raises(ValueError, match="scope: unknown scope 'everything'"):
        require("everything")
