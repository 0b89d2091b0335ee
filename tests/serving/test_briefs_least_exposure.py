"""Briefs with the least exposure: a booking key bound to its hotels, a quota of distinct guests per key
and hour (shared through Redis when set), shown in /metrics; bound over the CLI and the admin API."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from crm_analytics.serving.app import create_app
from crm_analytics.serving.booking_rules import example_booking
from crm_analytics.serving.keys import KeyStore
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore
from tests.serving.conftest import Served, auth

REDIS_URL = "redis://127.0.0.1:6379/0"


def key_store(served: Served) -> KeyStore:
    return KeyStore(ServingStore(served.settings.serving_store_url).engine, cache_ttl=0)


def offers(client: TestClient, secret: str, hotel: str = "H02", **who: Any) -> Any:
    booking = example_booking() | {"hotel_id": hotel, "room_type": "standard"}
    return client.post("/v1/offers", json={**who, "booking": booking}, headers={"X-API-Key": secret})


def guests(served: Served, count: int) -> list[str]:
    engine = ServingStore(served.settings.serving_store_url).engine
    with engine.connect() as conn:
        active = conn.execute(sa.text("SELECT snapshot_id FROM serving_snapshots WHERE active")).scalar()
        query = "SELECT customer_id FROM serving_customers WHERE snapshot_id = :s ORDER BY 1 LIMIT :n"
        rows = conn.execute(sa.text(query), {"s": active, "n": count})
        return [str(r[0]) for r in rows]


@pytest.fixture
def client(served: Served) -> Iterator[TestClient]:
    with TestClient(create_app(served.settings)) as test_client:
        yield test_client


def test_post_offers_bound_key_answers_for_its_hotels_only(client: TestClient, served: Served) -> None:
    _key, bound = key_store(served).create("desk-paris", ["booking"], hotels=["H02"])
    guest = guests(served, 1)[0]

    elsewhere = offers(client, bound, "H01", customer_id=guest)
    assert elsewhere.status_code == 403
    assert "booking.hotel_id" in elsewhere.json()["detail"]
    assert guest not in elsewhere.text
    assert offers(client, bound, "H02", customer_id=guest).status_code == 200
    # a key made before hotels existed books for all of them until it is bound
    assert offers(client, served.keys["booking"], "H01", customer_id=guest).status_code == 200


def test_put_key_hotels_binds_an_existing_key_at_once(client: TestClient, served: Served) -> None:
    key, secret = key_store(served).create("desk-any", ["booking"])
    admin = auth(served, "admin")
    assert offers(client, secret, "H01").status_code == 200

    unknown = client.put(f"/v1/keys/{key.key_id}/hotels", json={"hotels": ["H99"]}, headers=admin)
    assert unknown.status_code == 422
    bound = client.put(f"/v1/keys/{key.key_id}/hotels", json={"hotels": ["H02"]}, headers=admin)
    assert bound.status_code == 200
    assert bound.json()["hotels"] == ["H02"]

    assert offers(client, secret, "H01").status_code == 403
    assert offers(client, secret, "H02").status_code == 200
    listed = {k["key_id"]: k["hotels"] for k in client.get("/v1/keys", headers=admin).json()}
    assert listed[key.key_id] == ["H02"]
    created = client.post(
        "/v1/keys", json={"name": "desk-london", "roles": ["booking"], "hotels": ["H01"]}, headers=admin
    )
    assert created.status_code == 201
    assert created.json()["hotels"] == ["H01"]


def test_keys_create_and_bind_on_the_cli(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in served.env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "desk-cli", "--role", "booking", "--hotel", "H01", "--json"])
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    assert key["hotels"] == ["H01"]

    bad = runner.invoke(cli, ["keys", "bind", key["key_id"], "--hotel", "H99"])
    assert bad.exit_code == 2
    assert "--hotel: 'H99' is not a hotel" in bad.output
    good = runner.invoke(cli, ["keys", "bind", key["key_id"], "--hotel", "H02", "--hotel", "H03", "--json"])
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["hotels"] == ["H02", "H03"]
    listed = runner.invoke(cli, ["keys", "list", "--json"])
    rows = {k["key_id"]: k["hotels"] for k in json.loads(listed.stdout)["keys"]}
    assert rows[key["key_id"]] == "H02,H03"
    missing = runner.invoke(cli, ["keys", "bind", "k_00000000", "--hotel", "H02"])
    assert missing.exit_code == 1


def quota_settings(served: Served, **changes: Any) -> Settings:
    return served.settings.model_copy(update={"serving_guests_per_key_hour": 3, **changes})


def test_post_offers_key_reading_too_many_guests_is_throttled_for_the_hour(served: Served) -> None:
    key, secret = key_store(served).create("desk-quota", ["booking"])
    first, second, third, fourth = guests(served, 4)
    with TestClient(create_app(quota_settings(served))) as client:
        for guest in (first, second, third, first):  # reading a guest again is free
            assert offers(client, secret, customer_id=guest).status_code == 200
        refused = offers(client, secret, customer_id=fourth)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        assert fourth not in refused.text
        # from now on an unknown guest is refused too: a 429 must not tell who is a guest
        assert offers(client, secret, customer_id="U-nobody").status_code == 429
        assert offers(client, secret, guest={"email": "nobody@nowhere.example"}).status_code == 429
        assert offers(client, secret).status_code == 200  # no guest named: context-only offers
        assert offers(client, served.keys["booking"], customer_id=fourth).status_code == 200  # per key
        metrics = client.get("/metrics").text
    assert f'crm_guest_quota_refusals_total{{key_id="{key.key_id}"}} 3.0' in metrics


def test_post_offers_guest_quota_is_shared_by_workers_through_redis(served: Served) -> None:
    _key, secret = key_store(served).create(f"desk-{uuid.uuid4().hex[:6]}", ["booking"])
    first, second, third, fourth = guests(served, 4)
    shared = quota_settings(served, serving_redis_url=REDIS_URL)
    with TestClient(create_app(shared)) as one, TestClient(create_app(shared)) as other:
        assert offers(one, secret, customer_id=first).status_code == 200
        assert offers(one, secret, customer_id=second).status_code == 200
        assert offers(other, secret, customer_id=first).status_code == 200  # known to the other worker
        assert offers(other, secret, customer_id=third).status_code == 200
        assert offers(other, secret, customer_id=fourth).status_code == 429
        assert offers(one, secret, customer_id=first).status_code == 429  # refused everywhere
        quota = one.app.state.guest_quota  # type: ignore[attr-defined]
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    held = {str(m) for m in client.smembers(f"crm:guests:{int(time.time() // 3600)}:{_key.key_id}")}
    assert held == {quota.pseudonym(g) for g in (first, second, third)}
    plain = {hashlib.sha256(g.encode()).hexdigest()[:32] for g in (first, second, third)}
    assert not plain & held  # keyed: not a plain hash anyone holding our ids could recompute
    with TestClient(create_app(shared)) as third_worker:  # has seen no refusal of its own
        unknown = offers(third_worker, secret, guest={"email": "nobody@nowhere.example"})
        assert unknown.status_code == 429  # not 200: a 429 must not tell who is a guest
