"""The API's writes while `crm score` runs in another process: the run stages its rows chunk by chunk and
switches in one short transaction, so a feedback event waits milliseconds for the store's lock, never the
whole run (it used to fail with "database is locked" after 5 s: a 500 and a lost event). The store's lock
wait is cut to half a second here, so the test fails whenever a run holds the lock longer than that."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from crm_analytics.serving.app import create_app
from crm_analytics.settings import load_settings
from crm_analytics.store import ServingStore
from tests.serving.conftest import Served, auth
from tests.serving.test_hot_swap import BOOKING, a_scored_customer, copy  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow
LOCK_WAIT_MS = 500


@pytest.fixture
def lock_wait(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The served folder's copy (``test_hot_swap.copy``) with a short wait for the store's lock, for this
    process and the `crm score` it starts."""
    request.getfixturevalue("copy")
    monkeypatch.setenv("CRM_SERVING_STORE_LOCK_WAIT_MS", str(LOCK_WAIT_MS))


@pytest.mark.usefixtures("lock_wait")
def test_post_feedback_during_a_score_run_loses_nothing(served: Served) -> None:
    settings = load_settings(serving_rate_per_minute=1_000_000, serving_rate_burst=100_000)
    assert settings.serving_store_lock_wait_ms == LOCK_WAIT_MS
    store = ServingStore(settings.serving_store_url)
    before = store.active_id()
    headers = auth(served, "booking")
    customer = a_scored_customer(settings)
    sent: list[str] = []
    statuses: list[int] = []
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        decision = client.post(
            "/v1/offers", json={"customer_id": customer, "booking": BOOKING}, headers=headers
        )
        assert decision.status_code == 200
        answer = decision.json()
        offer = answer["offers"][0]["offer_id"]
        scoring = subprocess.Popen(
            [str(Path(sys.executable).parent / "crm"), "score", "--chunk-customers", "50", "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        while scoring.poll() is None:
            event_id = f"during-score-{len(sent)}"
            event = {
                "event_id": event_id,
                "event": "accepted",
                "offer_id": offer,
                "customer_id": customer,
                "occurred_at": "2026-03-01T10:00:00Z",
                "decision_id": answer["decision_id"],
            }
            response = client.post("/v1/feedback", json={"events": [event]}, headers=headers)
            statuses.append(response.status_code)
            sent.append(event_id)
            time.sleep(0.01)
        _, errors = scoring.communicate()
    assert scoring.returncode == 0, errors[-2000:]
    assert store.active_id() != before  # the run switched in a new snapshot while we wrote
    assert len(sent) >= 20, "the score run ended before the test could write during it"
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    with store.engine.connect() as conn:
        query = sa.text("SELECT event_id FROM serving_feedback WHERE event_id LIKE 'during-score-%'")
        stored = set(conn.execute(query).scalars())
    assert stored == set(sent)  # nothing lost
