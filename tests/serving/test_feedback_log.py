"""Offer feedback from the API into the warehouse's offer log: settled rows only, attributed to the guest's
account, idempotent, quarantined when bad, erased with the guest."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from crm_analytics.jobs.feedback import FeedbackReport, collect_feedback, offer_log_rows
from crm_analytics.profiles.links import linked_to_customers
from crm_analytics.store import ServingStore
from crm_analytics.warehouse import Warehouse
from tests.serving.conftest import Served, auth
from tests.serving.test_routes import BOOKING, store_rows

T0 = datetime(2026, 3, 1, 10, 0)
WINDOW = timedelta(days=30)


def event(
    event_id: str, kind: str, offer: str, decision: str, at: datetime, received: datetime | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event": kind,
        "offer_id": offer,
        "customer_id": "U1",
        "occurred_at": at,
        "received_at": received or at,
        "decision_id": decision,
        "propensity": 0.5 if kind == "shown" else None,
        "context": {**BOOKING, "already_booked": []} if kind == "shown" else None,
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
    assert by_id["s1"]["propensity"] == 0.5
    assert (report.shown, report.answered, report.unanswered, report.waiting) == (4, 1, 2, 1)
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


def test_shown_events_need_the_answer_they_came_from(client: TestClient, served: Served) -> None:
    shown = {
        "event_id": "ev-no-propensity",
        "event": "shown",
        "offer_id": "O01",
        "occurred_at": "2026-03-01T10:00:00Z",
        "decision_id": "d-x",
        "booking": BOOKING,
    }
    response = client.post("/v1/feedback", json={"events": [shown]}, headers=auth(served, "booking"))
    assert response.status_code == 422
    assert "propensity" in response.text
    answer = {k: v for k, v in shown.items() if k not in ("decision_id", "booking")} | {"event": "accepted"}
    response = client.post("/v1/feedback", json={"events": [answer]}, headers=auth(served, "booking"))
    assert response.status_code == 422
    assert "decision_id" in response.text


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
            "propensity": offer["propensity"],
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
        assert row["propensity"] == pytest.approx(first["propensity"])
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
        collect_feedback(
            ServingStore(served.settings.serving_store_url).upgrade(), warehouse, served.settings, now=later
        )
        assert warehouse.fetch(f"SELECT 1 FROM offer_log WHERE event_id IN ({quoted})").empty
