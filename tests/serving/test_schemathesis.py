"""Schemathesis over the service's own OpenAPI document, in process, on the served demo chain.

Every operation is called with a key for its role, with valid and invalid data (the examples,
coverage and fuzzing phases, positive and negative), and every response must conform to the
document: no 5xx, only documented status codes and content types, bodies that match their schemas
(so every rejection is a problem body), invalid requests rejected and valid ones accepted, and
authentication enforced where it is declared (schemathesis retries without and with a wrong key).

The schema is loaded when the module is imported, from an app built only to render the document
(``schemathesis.pytest.from_fixture`` fails on pytest 9.2: it sets ``Node._nodeid``); the requests go,
through ``_Deferred``, to an app on the ``served`` chain that the ``served_app`` fixture puts in place.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.python import asgi
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_analytics.serving.app import create_app
from crm_analytics.settings import Settings
from tests.serving.conftest import Served

MAX_EXAMPLES = 50  # per operation, for the fuzzing phase; examples and coverage add their own cases
# The role whose key each operation is called with; /livez, /readyz and /metrics need none.
ROLE_BY_PATH = {
    r"^/v1/(offers|feedback)$": "booking",
    r"^/v1/segments": "marketing",
    r"^/v1/(scores|customers|models)": "analyst",
    r"^/v1/(keys|admin)": "admin",
}


class _Deferred:
    """An ASGI app that forwards to ``target``, set once the served chain exists."""

    def __init__(self) -> None:
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.target is not None, "the served_app fixture sets the target"
        await self.target(scope, receive, send)


APP = _Deferred()
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20260314,  # the same cases on every run
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)
# The document does not depend on settings: defaults, unvalidated, so nothing is read from the environment.
schema = schemathesis.openapi.from_dict(
    create_app(Settings.model_construct(), load_models=False).openapi(), config=CONFIG
)
schema.app = APP


def role_for(path: str) -> str | None:
    roles = [role for pattern, role in ROLE_BY_PATH.items() if re.search(pattern, path)]
    assert len(roles) <= 1, path
    return roles[0] if roles else None


def key_headers(served: Served, path: str) -> dict[str, Any]:
    role = role_for(path)
    return {"Authorization": f"Bearer {served.keys[role]}"} if role else {}


@pytest.fixture(scope="module")
def served_app(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The app on a copy of the served store (feedback and keys written here stay here), rate limits
    lifted (schemathesis sends many wrong keys on purpose)."""
    store = tmp_path_factory.mktemp("schemathesis") / "serving.db"
    # the backup API, not a file copy: the store runs in WAL mode, recent commits are in serving.db-wal
    with sqlite3.connect(served.folder / "data" / "serving.db") as source, sqlite3.connect(store) as copy:
        source.backup(copy)
    settings = served.settings.model_copy(
        update={
            "serving_store_url": f"sqlite:///{store}",
            "serving_rate_burst": 100_000,
            "serving_rate_per_minute": 1_000_000,
            "serving_auth_failures": 1_000_000,
        }
    )
    APP.target = create_app(settings)
    yield
    asgi.shutdown_lifespans()  # schemathesis started the app's lifespan on its own event loop
    APP.target = None


@schema.parametrize()
def test_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, served: Served, served_app: None
) -> None:
    excluded = []
    if case.path == "/v1/scores" and isinstance(case.body, dict) and case.body.get("rows"):
        # Inline rows need the served churn model's features, which the document cannot name (they
        # change with the champion), so a schema-valid row may get 422; everything else is checked.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    case.call_and_validate(headers=key_headers(served, case.path), excluded_checks=excluded)


def test_known_resources_conform_too(served: Served, served_app: None) -> None:
    """Generated ids and names almost never exist: the 200 answers for real ones, checked the same way."""

    def call(method: str, path: str, accept: str = "application/json", **data: Any) -> Any:
        case = schema[path][method].Case(**data)
        response = case.call_and_validate(headers={**key_headers(served, path), "Accept": accept})
        assert response.status_code == 200, (path, response.text)
        return response

    segments = call("GET", "/v1/segments").json()
    segment = max(segments, key=lambda s: s["with_consent"])["segment"]
    page = call("GET", "/v1/segments/{name}/customers", path_parameters={"name": segment}, query={"limit": 5})
    customers = [c["customer_id"] for c in page.json()["customers"]]
    assert len(customers) == 5
    csv = call(
        "GET",
        "/v1/segments/{name}/customers",
        "text/csv",
        path_parameters={"name": segment},
        query={"limit": 5},
    )
    assert csv.text.splitlines()[0] == "customer_id,clv,churn_probability"
    for customer in customers:
        call("GET", "/v1/customers/{customer_id}", path_parameters={"customer_id": customer})
    scores = call(
        "POST", "/v1/scores", body={"customer_ids": [*customers, "U-nobody"]}, media_type="application/json"
    )
    assert [s["found"] for s in scores.json()["scores"]] == [True] * 5 + [False]
    booking = {"hotel_id": "H01", "check_in": "2026-03-14", "nights": 3, "guests": 2, "room_type": "standard"}
    offers = call(
        "POST",
        "/v1/offers",
        body={"customer_id": customers[0], "booking": booking},
        media_type="application/json",
    )
    assert offers.json()["known_guest"] is True


def test_every_operation_has_a_role_or_needs_no_key() -> None:
    public = {"/livez", "/readyz", "/metrics"}
    for path in schema.raw_schema["paths"]:
        assert (role_for(path) is None) == (path in public), path
