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
from crm_analytics.features.purchases import linked_to_customers
from crm_analytics.ingest.warehouse import Warehouse
from crm_analytics.serving.feedback_log import FeedbackReport, collect_feedback, offer_log_rows
from crm_analytics.serving.store import ServingStore
from tests.serving.conftest import Served, auth
from tests.serving.test_routes import BOOKING, store_rows

T0 = datetime(2026, 3, 1, 10, 0)
WINDOW = timedelta(days=30)


def event(event_id: str, kind: str, offer: str, decision: str | None, at: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event": kind,
        "offer_id": offer,
        "customer_id": "U1",
        "occurred_at": at,
        "decision_id": decision,
        "propensity": 0.5 if kind == "shown" else None,
        "context": {**BOOKING, "already_booked": []} if kind == "shown" else None,
    }


def test_a_showing_is_settled_by_its_answer_or_by_silence() -> None:
    events = [
        event("s1", "shown", "O01", "d1", T0),
        event("a1", "declined", "O01", "d1", T0 + timedelta(minutes=1)),
        event("a2", "accepted", "O01", "d1", T0 + timedelta(minutes=2)),  # the latest answer counts
        event("s2", "shown", "O02", "d1", T0),  # never answered
        event("s3", "shown", "O03", "d2", T0 + timedelta(days=20)),  # still in its answer window
        event("a3", "accepted", "O02", "d9", T0),  # no such showing
        event("s4", "shown", "O04", "d3", T0),
        event("a4", "accepted", "O04", "d3", T0 + WINDOW + timedelta(seconds=1)),  # too late
    ]
    report = FeedbackReport()
    rows = offer_log_rows(events, T0 + WINDOW + timedelta(days=1), WINDOW, report)
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
    assert offer_log_rows(events, T0 + 5 * WINDOW, WINDOW, FeedbackReport())[:2] == rows[:2]


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
    collected = json.loads(result.stdout)
    assert collected["answered"] >= 1
    assert collected["waiting"] >= 1  # the second offer's answer window is open
    ids = [e["event_id"] for e in events[:2]]
    with Warehouse(served.settings.warehouse_url) as warehouse:
        log = warehouse.fetch(
            f"SELECT * FROM offer_log WHERE event_id IN ('{ids[0]}', '{ids[1]}') ORDER BY event_id"
        )
        assert len(log) == 1
        row = log.iloc[0]
        assert row["event_id"] == ids[0]
        assert bool(row["accepted"])
        assert row["propensity"] == pytest.approx(first["propensity"])
        assert row["source"] == "booking"  # the guest's booking account, not our id
        linked = linked_to_customers(warehouse.ibis, "offer_log")
        attributed = linked.filter(linked.event_id == ids[0]).customer_id.to_pandas().tolist()
        assert attributed == [customer]  # the retraining path sees the row under the unified guest

        # once the answer window has passed, silence settles the second showing as declined
        later = datetime.now() + timedelta(days=31)
        store = ServingStore(served.settings.serving_store_url)
        report = collect_feedback(store, warehouse, served.settings, now=later)
        assert report.ingest["rows_new"] >= 1
        declined = warehouse.fetch(f"SELECT accepted FROM offer_log WHERE event_id = '{ids[1]}'")
        assert declined["accepted"].tolist() == [False]
        again = collect_feedback(store, warehouse, served.settings, now=later)  # adds nothing
        assert again.ingest["rows_new"] == 0
        assert again.ingest["rows_rejected"] == 0

    erased = CliRunner().invoke(cli, ["erase", customer, "--yes", "--json"])
    assert erased.exit_code == 0, erased.output
    with Warehouse(served.settings.warehouse_url) as warehouse:
        assert warehouse.fetch(f"SELECT 1 FROM offer_log WHERE event_id IN ('{ids[0]}', '{ids[1]}')").empty
        collect_feedback(
            ServingStore(served.settings.serving_store_url), warehouse, served.settings, now=later
        )
        assert warehouse.fetch(f"SELECT 1 FROM offer_log WHERE event_id IN ('{ids[0]}', '{ids[1]}')").empty
