"""Schemathesis over the service's own OpenAPI document, in process, on the served demo chain.

Every operation is called with a key for its role, with valid and invalid data (the examples,
coverage and fuzzing phases, positive and negative), and every response must conform to the
document: no 5xx, only documented status codes and content types, bodies that match their schemas
(so every rejection is a problem body), invalid requests rejected and valid ones accepted, and
authentication enforced where it is declared (schemathesis retries without and with a wrong key).

The schema is loaded when the module is imported, from an app built only to render the document with
the demo chain's hotels catalogue, as the served app renders it (a test compares the two)
(``schemathesis.pytest.from_fixture`` fails on pytest 9.2: it sets ``Node._nodeid``); the requests go,
through ``_Deferred``, to an app on the ``served`` chain that the ``served_app`` fixture puts in place.

Dates are the one place where schema-valid input is refused by state: a check-in outside the window
around today, times outside 2000-01-01..2100-01-01 and birth dates before 1900 cannot be stated in JSON
Schema (the fields' descriptions say them), so such cases are expected to be 422, not accepted.
"""

from __future__ import annotations

import copy
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.python import asgi
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_analytics.datasets.demo.catalogue import hotels_frame
from crm_analytics.serving import booking_rules
from crm_analytics.serving.app import create_app
from crm_analytics.serving.booking_rules import BookingRules, example_booking
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
# Settings: defaults, unvalidated, so nothing is read from the environment; the catalogue: the demo chain's.
RULES = BookingRules.of(
    hotels_frame().to_dict("records"), Settings.model_construct().serving_checkin_window_days, None
)


def _document() -> dict[str, Any]:
    app = create_app(Settings.model_construct(), load_models=False)
    app.state.booking_rules = RULES
    return app.openapi()


DOCUMENT = _document()
DOCUMENT_DAY = datetime.now(UTC).date()  # its examples' dates count from this day
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG)
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


def dates_out_of_range(value: Any) -> bool:
    """Whether a body holds a check-in, time or birth date outside the ranges the descriptions state."""
    checks = {
        "check_in": lambda v: RULES.check_check_in(date.fromisoformat(v)),
        "occurred_at": lambda v: booking_rules.sane_time(datetime.fromisoformat(v)),
        "birth_date": lambda v: booking_rules.sane_birth_date(date.fromisoformat(v)),
    }
    if isinstance(value, list):
        return any(dates_out_of_range(v) for v in value)
    if not isinstance(value, dict):
        return False
    for key, item in value.items():
        if key in checks and isinstance(item, str):
            try:
                checks[key](item)
            except ValueError:
                return True
        elif dates_out_of_range(item):
            return True
    return False


@schema.parametrize()
def test_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, served: Served, served_app: None
) -> None:
    excluded = []
    if case.path == "/v1/scores" and isinstance(case.body, dict) and case.body.get("rows"):
        # Inline rows need the served churn model's features, which the document cannot name (they
        # change with the champion), so a schema-valid row may get 422; everything else is checked.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if dates_out_of_range(case.body):  # the one documented refusal by state: 422 naming the field
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
    booking = example_booking()
    offers = call(
        "POST",
        "/v1/offers",
        body={"customer_id": customers[0], "booking": booking},
        media_type="application/json",
    )
    assert offers.json()["known_guest"] is True


def test_the_document_is_the_served_one(served: Served, served_app: None) -> None:
    """The served app renders the catalogue it serves (the demo chain's hotels) exactly as checked here."""
    with TestClient(create_app(served.settings, load_models=False)) as client:
        served_document = client.get("/openapi.json").json()
    if datetime.now(UTC).date() == DOCUMENT_DAY:
        assert served_document == DOCUMENT
    else:  # the run crossed midnight: the example dates moved on with it
        assert served_document == _document()
    booking = served_document["components"]["schemas"]["Booking"]["properties"]
    assert booking["hotel_id"]["enum"] == [f"H{i:02d}" for i in range(1, 13)]
    assert booking["room_type"]["enum"] == ["deluxe", "hypoallergenic", "standard", "suite"]


def test_every_operation_has_a_role_or_needs_no_key() -> None:
    public = {"/livez", "/readyz", "/metrics"}
    for path in schema.raw_schema["paths"]:
        assert (role_for(path) is None) == (path in public), path
