"""Offer feedback from the API into the warehouse's offer log: only for logged decisions, with the
decision log's propensities; settled rows only, attributed to the guest's account, idempotent,
quarantined when bad, erased with the guest."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from crm_analytics.jobs.feedback import FeedbackReport, collect_feedback, offer_log_rows
from crm_analytics.profiles.links import linked_to_customers
from crm_analytics.store import Decision, ServingStore
from crm_analytics.warehouse import Warehouse
from tests.serving.conftest import Served, auth, decide
from tests.serving.test_briefs_least_exposure import key_store
from tests.serving.test_routes import BOOKING, an_allergic_customer, store_rows

T0 = datetime(2026, 3, 1, 10, 0)
WINDOW = timedelta(days=30)
LOGGED = {  # the decision log: d1..d3 and d9 offered O01..O04, each with propensity 0.5
    d: Decision(d, "U1", T0, tuple((f"O0{i}", 0.5) for i in range(1, 5))) for d in ("d1", "d2", "d3", "d9")
}


def event(
    event_id: str, kind: str, offer: str, decision: str, at: datetime, received: datetime | None = None
) -> dict[str, Any]:
    """A stored feedback event as ``ServingStore.feedback_events`` returns it."""
    return {
        "event_id": event_id,
        "event": kind,
        "offer_id": offer,
        "customer_id": "U1",
        "occurred_at": at,
        "received_at": received or at,
        "decision_id": decision,
        "context": {**BOOKING, "already_booked": []} if kind == "shown" else None,
        "decision": LOGGED.get(decision),
    }


EVENTS = [
    event("s1", "shown", "O01", "d1", T0),
    event("a1", "declined", "O01", "d1", T0 + timedelta(minutes=1)),
    event("a2", "accepted", "O01", "d1", T0 + timedelta(minutes=2)),  # the latest answer counts
    event("s2", "shown", "O02", "d1", T0),  # never answered
    event("s3", "shown", "O03", "d2", T0 + timedelta(days=20)),  # its window is still open
    event("a3", "accepted", "O02", "d9", T0),  # no such showing
    event("s4", "shown", "O04", "d3", T0),
    event("a4", "accepted", "O04", "d3", T0, received=T0 + WINDOW + timedelta(seconds=1)),  # reached us late
    event("s5", "shown", "O01", "d-forged", T0),  # no logged decision: never collected
    event("s6", "shown", "O09", "d1", T0),  # an offer its decision did not make: never collected
]


def test_a_showing_is_settled_when_its_answer_window_closes() -> None:
    report = FeedbackReport()
    rows = offer_log_rows(EVENTS, T0 + WINDOW + timedelta(days=1), WINDOW, report)
    by_id = {r["event_id"]: r for r in rows}
    assert set(by_id) == {"s1", "s2", "s4"}
    assert by_id["s1"]["accepted"] is True
    assert by_id["s1"]["responded_at"] == T0 + timedelta(minutes=2)
    assert by_id["s2"]["accepted"] is False
    assert by_id["s2"]["responded_at"] is None
    assert by_id["s4"]["accepted"] is False
    assert by_id["s1"]["hotel_id"] == "H01"
    assert by_id["s1"]["propensity"] == 0.5  # the decision log's
    assert (report.shown, report.answered, report.unanswered, report.waiting) == (6, 1, 2, 1)
    assert report.no_decision == 2
    assert (report.answers_unmatched, report.answers_late) == (1, 1)
    # the same events collected later give the same rows: a row never depends on when it is collected
    later = offer_log_rows(EVENTS, T0 + 5 * WINDOW, WINDOW, FeedbackReport())
    assert [r for r in later if r["event_id"] != "s3"] == rows
    # an answer inside the window may still change, so nothing is settled before the window closes
    early = FeedbackReport()
    assert offer_log_rows(EVENTS, T0 + timedelta(minutes=5), WINDOW, early) == []
    assert early.waiting == 4
    # a collected showing is never rebuilt
    again = FeedbackReport()
    assert (
        offer_log_rows(EVENTS, T0 + 5 * WINDOW, WINDOW, again, collected={"s1", "s2", "s4"})[0]["event_id"]
        == "s3"
    )
    assert again.collected_before == 3


def test_post_feedback_events_must_name_a_decision(client: TestClient, served: Served) -> None:
    shown = {
        "event_id": "ev-no-decision",
        "event": "shown",
        "offer_id": "O01",
        "occurred_at": "2026-03-01T10:00:00Z",
        "booking": BOOKING,
    }
    for kind in ("shown", "accepted"):
        body = {"events": [shown | {"event": kind}]}
        response = client.post("/v1/feedback", json=body, headers=auth(served, "booking"))
        assert response.status_code == 422
        assert "decision_id" in response.text


def test_post_feedback_unknown_decision_is_404_naming_the_field(client: TestClient, served: Served) -> None:
    customer = an_allergic_customer(served)
    real = decide(client, served, customer)
    offer = real["offers"][0]["offer_id"]

    def shown(event_id: str, decision_id: str) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "event": "shown",
            "offer_id": offer,
            "customer_id": customer,
            "occurred_at": "2026-03-01T10:00:00Z",
            "decision_id": decision_id,
            "propensity": 1e-40,
            "booking": BOOKING,
        }

    events = [shown("ev-forged-ok", real["decision_id"]), shown("ev-forged", "d-never-issued")]
    response = client.post("/v1/feedback", json={"events": events}, headers=auth(served, "booking"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("events[1].decision_id: ")
    assert "d-never-issued" not in response.text  # no echo of the input
    stored = store_rows(served, "SELECT 1 FROM serving_feedback WHERE event_id LIKE 'ev-forged%'")
    assert stored == []  # nothing of a refused request is kept
    documented = client.get("/openapi.json").json()["paths"]["/v1/feedback"]["post"]["responses"]
    assert {"404", "422"} <= set(documented)


def test_post_feedback_offer_or_guest_not_of_the_decision_is_422(client: TestClient, served: Served) -> None:
    customer = an_allergic_customer(served)
    real = decide(client, served, customer, top_k=1)
    answer = {
        "event_id": "ev-mismatch",
        "event": "accepted",
        "offer_id": real["offers"][0]["offer_id"],
        "customer_id": customer,
        "occurred_at": "2026-03-01T10:00:00Z",
        "decision_id": real["decision_id"],
    }
    offered = {o["offer_id"] for o in real["offers"]}
    other_offer = next(f"O{i:02d}" for i in range(1, 13) if f"O{i:02d}" not in offered)
    for field, forged in (("offer_id", other_offer), ("customer_id", "U-someone-else")):
        body = {"events": [answer | {field: forged}]}
        response = client.post("/v1/feedback", json=body, headers=auth(served, "booking"))
        assert response.status_code == 422, field
        assert response.json()["detail"].startswith(f"events[0].{field}: ")
    unknown = decide(client, served, None)  # an unknown guest's answer has no guest to name
    body = {
        "events": [
            answer | {"decision_id": unknown["decision_id"], "offer_id": unknown["offers"][0]["offer_id"]}
        ]
    }
    assert client.post("/v1/feedback", json=body, headers=auth(served, "booking")).status_code == 422
    assert store_rows(served, "SELECT 1 FROM serving_feedback WHERE event_id = 'ev-mismatch'") == []
    # the guest may be left out: the decision log names them
    body = {"events": [{k: v for k, v in answer.items() if k != "customer_id"}]}
    assert client.post("/v1/feedback", json=body, headers=auth(served, "booking")).status_code == 200
    kept = store_rows(served, "SELECT customer_id FROM serving_feedback WHERE event_id = 'ev-mismatch'")
    assert kept == [{"customer_id": customer}]


def test_post_offers_is_in_the_decision_log_before_the_answer(client: TestClient, served: Served) -> None:
    customer = an_allergic_customer(served)
    answer = decide(client, served, customer)
    logged = store_rows(  # another connection: committed before the answer left
        served, f"SELECT * FROM serving_decisions WHERE decision_id = '{answer['decision_id']}'"
    )
    assert len(logged) == 1
    row = logged[0]
    assert row["customer_id"] == customer
    offers = [{"offer_id": o["offer_id"], "propensity": o["propensity"]} for o in answer["offers"]]
    assert json.loads(row["offers"]) == offers
    assert json.loads(row["models"]) == answer["models"]
    assert [row["key_id"]] == [
        r["key_id"] for r in store_rows(served, "SELECT key_id FROM api_keys WHERE name = 'test-booking'")
    ]
    assert row["decided_at"] is not None


def test_served_offers_and_their_feedback_reach_the_offer_log(
    client: TestClient, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = str(
        store_rows(served, "SELECT customer_id FROM serving_customers WHERE history IS NOT NULL")[1][
            "customer_id"
        ]
    )
    offered = client.post(
        "/v1/offers",
        json={"customer_id": customer, "booking": BOOKING, "top_k": 2},
        headers=auth(served, "booking"),
    ).json()
    decision, (first, second) = offered["decision_id"], offered["offers"]
    assert 0 < first["propensity"] <= 1
    now = datetime.now().replace(microsecond=0)
    events = [
        {
            "event_id": f"fb-{decision}-{offer['offer_id']}",
            "event": "shown",
            "offer_id": offer["offer_id"],
            "customer_id": customer,
            "occurred_at": now.isoformat() + "Z",
            "decision_id": decision,
            "propensity": 1e-40,  # the caller's word is ignored: the decision log's is collected
            "booking": BOOKING,
        }
        for offer in (first, second)
    ]
    events.append(
        {
            "event_id": f"fb-{decision}-accepted",
            "event": "accepted",
            "offer_id": first["offer_id"],
            "customer_id": customer,
            "occurred_at": (now + timedelta(minutes=1)).isoformat() + "Z",
            "decision_id": decision,
        }
    )
    assert (
        client.post("/v1/feedback", json={"events": events}, headers=auth(served, "booking")).status_code
        == 200
    )

    for name, value in served.env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["feedback", "collect", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["waiting"] >= 2  # the answer windows are open: nothing settled yet
    ids = [e["event_id"] for e in events[:2]]
    quoted = ", ".join(f"'{i}'" for i in ids)
    with Warehouse(served.settings.warehouse_url) as warehouse:
        assert warehouse.fetch(f"SELECT 1 FROM offer_log WHERE event_id IN ({quoted})").empty
        later = datetime.now() + timedelta(days=served.settings.feedback_answer_days + 1)
        store = ServingStore(served.settings.serving_store_url).upgrade()
        report = collect_feedback(store, warehouse, served.settings, now=later)
        assert report.ingest["rows_new"] >= 2
        log = warehouse.fetch(f"SELECT * FROM offer_log WHERE event_id IN ({quoted})").set_index("event_id")
        assert log.loc[ids, "accepted"].tolist() == [True, False]  # the second offer was never answered
        row = log.loc[ids[0]]
        assert bool(row["accepted"])
        assert row["propensity"] == pytest.approx(first["propensity"])  # not the 1e-40 sent
        assert log["propensity"].min() > 1e-3
        assert row["source"] == "booking"  # the guest's booking account, not our id
        linked = linked_to_customers(warehouse.ibis, "offer_log")
        attributed = linked.filter(linked.event_id == ids[0]).customer_id.to_pandas().tolist()
        assert attributed == [customer]  # the retraining path sees the row under the unified guest

        again = collect_feedback(store, warehouse, served.settings, now=later)  # adds nothing
        assert again.collected_before >= 2
        assert again.ingest.get("rows_new", 0) == 0

    erased = CliRunner().invoke(cli, ["erase", customer, "--yes", "--json"])
    assert erased.exit_code == 0, erased.output
    with Warehouse(served.settings.warehouse_url) as warehouse:
        assert warehouse.fetch(f"SELECT 1 FROM offer_log WHERE event_id IN ({quoted})").empty
        assert not store_rows(served, f"SELECT 1 FROM serving_decisions WHERE customer_id = '{customer}'")
        collect_feedback(
            ServingStore(served.settings.serving_store_url).upgrade(), warehouse, served.settings, now=later
        )
        assert warehouse.fetch(f"SELECT 1 FROM offer_log WHERE event_id IN ({quoted})").empty


@pytest.mark.slow  # a whole demo chain: in `make test`, not in the fast loop
def test_post_offers_is_503_when_the_decision_log_cannot_be_written(
    client: TestClient, served: Served
) -> None:
    customer = an_allergic_customer(served)
    holder = sqlite3.connect(served.folder / "data" / "serving.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another writer holds the store past the busy timeout (5 s)
        body = {"customer_id": customer, "booking": BOOKING}
        response = client.post("/v1/offers", json=body, headers=auth(served, "booking"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503  # no answer leaves unlogged
    assert response.headers["Retry-After"] == "1"
    assert "decision log" in response.json()["detail"]
    assert decide(client, served, customer)["decision_id"]  # and once the lock is gone, answers flow


def test_post_feedback_sees_only_the_keys_hotels_and_never_confirms_an_unnamed_guest(
    client: TestClient, served: Served
) -> None:
    """A key bound to other hotels gets the unknown-decision 404; an answer that found its guest by
    e-mail did not name them, so no customer_id is accepted for it, the right one included."""
    keys = key_store(served)
    _key, elsewhere = keys.create("desk-h02", ["booking"], hotels=["H02"])  # before the service reads keys
    _key, here = keys.create("desk-h01", ["booking"], hotels=["H01"])
    billing = pd.read_parquet(served.folder / "data" / "demo" / "customers_billing.parquet").iloc[0]
    found = client.post(
        "/v1/offers",
        json={"guest": {"email": billing["email"]}, "booking": BOOKING},  # hotel H01
        headers=auth(served, "booking"),
    ).json()
    assert found["matched_by"] == "email"
    assert found["customer_id"] is None
    logged = store_rows(
        served, f"SELECT customer_id FROM serving_decisions WHERE decision_id = '{found['decision_id']}'"
    )
    guest = logged[0]["customer_id"]
    answer = {
        "event_id": "ev-unnamed",
        "event": "accepted",
        "offer_id": found["offers"][0]["offer_id"],
        "occurred_at": "2026-03-01T10:00:00Z",
        "decision_id": found["decision_id"],
    }
    other_hotel = client.post("/v1/feedback", json={"events": [answer]}, headers={"X-API-Key": elsewhere})
    assert other_hotel.status_code == 404, other_hotel.text
    assert other_hotel.json()["detail"].startswith("events[0].decision_id: ")

    details = set()
    for named in (guest, "U-someone-else"):  # right or wrong: the same answer
        body = {"events": [answer | {"customer_id": named}]}
        response = client.post("/v1/feedback", json=body, headers=auth(served, "booking"))
        assert response.status_code == 422
        details.add(response.json()["detail"])
    assert details == {"events[0].customer_id: that /v1/offers answer did not name its guest; leave it out"}
    kept = client.post("/v1/feedback", json={"events": [answer]}, headers={"X-API-Key": here})
    assert kept.status_code == 200
    assert store_rows(served, "SELECT customer_id FROM serving_feedback WHERE event_id = 'ev-unnamed'") == [
        {"customer_id": guest}
    ]


def test_post_feedback_on_a_decision_logged_before_hotels_were_recorded(
    client: TestClient, served: Served
) -> None:
    """A decision from before migration 0006 (no hotel, no matched_by): only unbound keys (or the key
    that asked) see it, and no customer_id may be named for it."""
    store = ServingStore(served.settings.serving_store_url)
    keys = key_store(served)
    _key, bound = keys.create("desk-bound", ["booking"], hotels=["H01"])
    guest = an_allergic_customer(served)
    old = Decision(
        "d-before-0006", guest, datetime(2026, 1, 5), (("O01", 0.4),), {"crm-offers": "1"}, "k_old"
    )
    store.record_decisions([old])
    answer = {
        "event_id": "ev-old",
        "event": "accepted",
        "offer_id": "O01",
        "occurred_at": "2026-01-06T10:00:00Z",
        "decision_id": old.decision_id,
    }
    unseen = client.post("/v1/feedback", json={"events": [answer]}, headers={"X-API-Key": bound})
    assert unseen.status_code == 404
    named = client.post(
        "/v1/feedback", json={"events": [answer | {"customer_id": guest}]}, headers=auth(served, "booking")
    )
    assert named.status_code == 422
    kept = client.post("/v1/feedback", json={"events": [answer]}, headers=auth(served, "booking"))
    assert kept.status_code == 200
