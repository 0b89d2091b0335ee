"""Abuse: failed authentication throttled per client address, the rate limit per known key only, a
guessed secret costing no database query, and the admin role's key management over the API.

These run the real app (``create_app``) on a fresh serving store, without models: key routes need none.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from crm_analytics.serving.app import create_app
from crm_analytics.serving.keys import ROLES, SCOPES, KeyStore
from crm_analytics.serving.routes.keys import Role
from crm_analytics.settings import Settings, load_settings
from crm_analytics.store import ServingStore


def random_secret() -> str:
    return "crm_" + secrets.token_urlsafe(32)


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    settings = load_settings(
        data_dir=tmp_path / "data",
        serving_store_url=f"sqlite:///{tmp_path / 'data' / 'serving.db'}",
        serving_auth_failures=3,
        serving_rate_burst=5,
        serving_rate_per_minute=60,
    )
    ServingStore(settings.serving_store_url).upgrade()
    return settings


@pytest.fixture
def admin_secret(api_settings: Settings) -> str:
    store = KeyStore(ServingStore(api_settings.serving_store_url).engine, cache_ttl=0)
    return store.create("ops", ["admin"])[1]


@pytest.fixture
def api(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings, load_models=False)) as client:
        yield client


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_get_keys_random_secrets_from_one_address_get_429_after_the_limit(
    api: TestClient, admin_secret: str
) -> None:
    codes = [api.get("/v1/keys", headers=bearer(random_secret())).status_code for _ in range(4)]
    blocked = api.get("/v1/keys", headers=bearer(random_secret()))
    valid_meanwhile = api.get("/v1/keys", headers=bearer(admin_secret))

    assert codes == [401, 401, 401, 429]  # three failures allowed per window, then refused
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert blocked.json()["instance"] == "/v1/keys"
    assert valid_meanwhile.status_code == 429  # the address is refused before any key is looked up


def test_get_keys_over_the_rate_is_429_for_that_key_only(api_settings: Settings) -> None:
    store = KeyStore(ServingStore(api_settings.serving_store_url).engine, cache_ttl=0)
    first, second = store.create("a", ["admin"])[1], store.create("b", ["admin"])[1]
    with TestClient(create_app(api_settings, load_models=False)) as api:
        codes = [api.get("/v1/keys", headers=bearer(first)).status_code for _ in range(6)]
        other = api.get("/v1/keys", headers=bearer(second))
        guesses = [api.get("/v1/keys", headers=bearer(random_secret())).status_code for _ in range(2)]

    assert codes == [200] * 5 + [429]  # the burst of 5, spent by the key's id
    assert other.status_code == 200
    assert guesses == [401, 401]  # a guess spends the address's failures, not a bucket of its own


def test_verify_key_random_secrets_cost_at_most_one_query(api_settings: Settings) -> None:
    engine = ServingStore(api_settings.serving_store_url).engine
    queries: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    store = KeyStore(engine, cache_ttl=5.0, clock=lambda: 100.0)
    key, secret = KeyStore(engine, cache_ttl=0).create("ops", ["admin"])
    queries.clear()

    misses = [store.verify(random_secret()) for _ in range(100)]
    hits = [store.verify(secret) for _ in range(10)]

    assert misses == [None] * 100
    assert {k.key_id for k in hits if k} == {key.key_id}
    assert len(queries) == 1  # one read of every active key; the rest answered from memory


def test_verify_key_created_elsewhere_verifies_after_the_miss_interval(api_settings: Settings) -> None:
    engine = ServingStore(api_settings.serving_store_url).engine
    now = [100.0]
    server = KeyStore(engine, cache_ttl=5.0, miss_reload=1.0, clock=lambda: now[0])
    assert server.verify(random_secret()) is None  # the key list is read now
    key, secret = KeyStore(engine, cache_ttl=0).create("new", ["booking"])  # e.g. `crm keys create`

    assert server.verify(secret) is None  # within the miss interval: answered from memory
    now[0] += 1.5
    verified = server.verify(secret)
    assert verified is not None
    assert verified.key_id == key.key_id


def test_post_keys_creates_a_key_whose_secret_is_shown_once(api: TestClient, admin_secret: str) -> None:
    created = api.post(
        "/v1/keys", json={"name": "pms-paris", "roles": ["booking"]}, headers=bearer(admin_secret)
    )

    assert created.status_code == 201
    body = created.json()
    assert body["roles"] == ["booking"]
    assert body["secret"].startswith("crm_")
    assert created.headers["cache-control"] == "no-store"
    listed = api.get("/v1/keys", headers=bearer(admin_secret))
    assert listed.status_code == 200
    assert body["key_id"] in {k["key_id"] for k in listed.json()}
    assert body["secret"] not in listed.text
    works = api.get("/v1/keys", headers=bearer(body["secret"]))
    assert works.status_code == 403  # a booking key: verified at once, but no admin scope


def test_delete_key_revokes_it_at_once(api: TestClient, admin_secret: str) -> None:
    created = api.post("/v1/keys", json={"name": "temp", "roles": ["admin"]}, headers=bearer(admin_secret))
    key_id, secret = created.json()["key_id"], created.json()["secret"]
    assert api.get("/v1/keys", headers=bearer(secret)).status_code == 200

    revoked = api.delete(f"/v1/keys/{key_id}", headers=bearer(admin_secret))

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert api.get("/v1/keys", headers=bearer(secret)).status_code == 401
    unknown = api.delete("/v1/keys/k_00000000", headers=bearer(admin_secret))
    assert unknown.status_code == 404
    assert unknown.json()["instance"] == "/v1/keys/{key_id}"


@pytest.mark.parametrize(
    "body",
    [{"name": "x", "roles": ["root"]}, {"name": "x", "roles": []}, {"name": " ", "roles": ["admin"]}],
)
def test_post_keys_bad_request_is_422_naming_the_field(
    api: TestClient, admin_secret: str, body: dict[str, Any]
) -> None:
    response = api.post("/v1/keys", json=body, headers=bearer(admin_secret))

    assert response.status_code == 422
    assert {e["field"].split(".")[1] for e in response.json()["errors"]} <= {"name", "roles"}


def test_keys_routes_are_for_admins_only(api: TestClient, api_settings: Settings) -> None:
    store = KeyStore(ServingStore(api_settings.serving_store_url).engine, cache_ttl=0)
    analyst = store.create("analyst", ["analyst"])[1]

    assert api.get("/v1/keys", headers=bearer(analyst)).status_code == 403
    assert api.post("/v1/admin/reload", headers=bearer(analyst)).status_code == 403


def test_every_scope_is_required_by_some_route(api_settings: Settings) -> None:
    app = create_app(api_settings, load_models=False)
    names: set[str] = set()
    routes = list(app.routes)
    while routes:
        route = routes.pop()
        if hasattr(route, "original_router"):  # an included router (FastAPI >= 0.165)
            routes.extend(route.original_router.routes)
        if isinstance(route, APIRoute):
            stack = list(route.dependant.dependencies)
            while stack:
                dependency = stack.pop()
                names.add(getattr(dependency.call, "__name__", ""))
                stack.extend(dependency.dependencies)
    used = {name.split("_", 1)[1] for name in names if name.startswith(("require_", "holds_"))} - {
        "json"
    }  # require_json: the body check

    assert used == SCOPES
    assert set(Role.__args__) == set(ROLES)  # the API's role names are the key store's


def test_put_keys_is_405_naming_every_method_of_the_path(api: TestClient) -> None:
    response = api.put("/v1/keys")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"  # both routes of the path, not the first one only
