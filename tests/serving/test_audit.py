"""The audit trail and the API's hygiene on a served demo chain: the access log, problem bodies that echo
no input, no-store answers, the brief scope, the docs served from the package, and every documented
example accepted."""

from __future__ import annotations

import json
import re
import stat
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crm_analytics.serving import keys as key_roles
from crm_analytics.serving.booking_rules import example_booking
from tests.serving.conftest import Served, auth
from tests.serving.test_routes import an_allergic_customer

EMAIL = "jane.doe@example.com"


def access_lines(served: Served) -> list[dict[str, Any]]:
    return [json.loads(line) for line in served.settings.access_log.read_text().splitlines()]


def key_id(client: TestClient, served: Served, role: str) -> str:
    """The key id of the served role's key, as the access log names it (read back from its own line)."""
    client.get("/v1/models", headers=auth(served, role))
    return str(access_lines(served)[-1]["key_id"])


def test_get_customer_is_in_the_access_log_with_key_route_and_guest(
    client: TestClient, served: Served
) -> None:
    customer = an_allergic_customer(served)
    analyst = key_id(client, served, "analyst")

    response = client.get(f"/v1/customers/{customer}", headers=auth(served, "analyst"))

    assert response.status_code == 200
    line = access_lines(served)[-1]
    assert line["key_id"] == analyst
    assert line["roles"] == ["analyst"]
    assert line["route"] == "/v1/customers/{customer_id}"
    assert line["status"] == 200
    assert line["customers"] == [customer]
    assert line["duration_ms"] > 0
    assert {"time", "method", "client"} <= line.keys()
    profile = response.json()["profile"]
    names = [str(v["value"]) for v in profile.values() if isinstance(v, dict) and v.get("value")]
    logged = served.settings.access_log.read_text()
    assert names
    assert not any(name in logged for name in names if len(name) > 3)  # ids only, no facts
    assert stat.S_IMODE(served.settings.access_log.stat().st_mode) == 0o600


def test_post_offers_brief_read_is_logged_and_denied_scopes_too(client: TestClient, served: Served) -> None:
    customer = an_allergic_customer(served)
    offers = client.post(
        "/v1/offers",
        json={"customer_id": customer, "booking": example_booking()},
        headers=auth(served, "booking"),
    )
    denied = client.get(f"/v1/customers/{customer}", headers=auth(served, "booking"))

    assert offers.status_code == 200
    assert denied.status_code == 403
    read, refused = access_lines(served)[-2:]
    assert (read["route"], read["customers"], read["roles"]) == ("/v1/offers", [customer], ["booking"])
    assert (refused["status"], refused["denied_scope"], refused["customers"]) == (403, "customers", [])


def test_post_offers_without_the_brief_scope_gets_offers_but_no_brief(
    client: TestClient, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An allergic guest's brief has facts (test_routes.py); a key without ``brief`` sees none of them."""
    monkeypatch.setitem(key_roles.ROLES, "booking", ("offers", "feedback"))  # before the key is first read
    customer = an_allergic_customer(served)

    limited = client.post(
        "/v1/offers",
        json={"customer_id": customer, "booking": example_booking()},
        headers=auth(served, "booking"),
    )

    assert limited.status_code == 200
    assert limited.json()["brief"] == {"service_facts": [], "value_tier": None, "churn_risk": None}
    assert limited.json()["known_guest"] is True
    assert limited.json()["offers"]


def test_get_customer_by_email_echoes_no_input(client: TestClient, served: Served) -> None:
    response = client.get(f"/v1/customers/{EMAIL}", headers=auth(served, "analyst"))
    unmatched = client.get(f"/v1/nothing/{EMAIL}", headers=auth(served, "analyst"))

    assert response.status_code == 404
    assert response.json()["instance"] == "/v1/customers/{customer_id}"
    assert EMAIL not in response.text
    assert unmatched.status_code == 404
    assert "instance" not in unmatched.json()
    assert EMAIL not in unmatched.text
    assert EMAIL not in served.settings.access_log.read_text()


@pytest.mark.parametrize("role", ["analyst", "marketing"])
def test_answers_with_personal_data_are_not_stored(client: TestClient, served: Served, role: str) -> None:
    customer = an_allergic_customer(served)
    path = f"/v1/customers/{customer}" if role == "analyst" else "/v1/segments"

    response = client.get(path, headers=auth(served, role))
    problem = client.get(path)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert problem.status_code == 401
    assert problem.headers["cache-control"] == "no-store"


def test_get_docs_loads_nothing_from_another_origin(client: TestClient) -> None:
    page = client.get("/docs")

    assert page.status_code == 200
    origins = set(re.findall(r"https?://[^/\"' ]+", page.text))
    assert origins == set()  # every asset from this app (relative URLs), no CDN, no validator badge
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
    assert len(assets) >= 3
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404  # ReDoc needs a CDN: not served


def test_every_openapi_example_is_accepted(client: TestClient, served: Served) -> None:
    """ST202 (schemathesis): a documented example must not get a 4xx, except where the state refuses it
    with a documented status: the feedback example names a decision this store never logged (404)."""
    roles = {"/v1/offers": "booking", "/v1/feedback": "booking", "/v1/scores": "analyst", "/v1/keys": "admin"}
    refused_by_state = {"/v1/feedback": 404}
    document = client.get("/openapi.json").json()
    posted = []
    for path, operations in document["paths"].items():
        content = operations.get("post", {}).get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema", {})
        ref = schema.get("$ref", "").rsplit("/", 1)[-1]
        for example in document["components"]["schemas"].get(ref, {}).get("examples", []):
            response = client.post(path, json=example, headers=auth(served, roles[path]))
            if path in refused_by_state:
                assert response.status_code == refused_by_state[path], (path, response.text)
                assert str(response.status_code) in operations["post"]["responses"]  # documented
            else:
                assert response.status_code < 300, (path, example, response.text)
            posted.append(path)
    assert {"/v1/offers", "/v1/scores", "/v1/feedback", "/v1/keys"} <= set(posted)


def test_post_reload_answers_the_served_versions(client: TestClient, served: Served) -> None:
    response = client.post("/v1/admin/reload", headers=auth(served, "admin"))

    assert response.status_code == 200
    body = response.json()
    assert body["reloaded"] is False  # nothing moved since start-up
    assert set(body["models"]) == {"crm-clv", "crm-churn", "crm-offers"}
    assert body["snapshot_id"]
