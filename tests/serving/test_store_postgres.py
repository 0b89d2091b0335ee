"""The serving store on PostgreSQL: ``crm score`` into a fresh database, the API over it (the same answers
as over SQLite), the atomic switch of a second scoring run, idempotent feedback, and ``crm serve`` with
two workers reading and writing at once, on PostgreSQL and on SQLite.

One database for the module (scoring takes seconds), created and dropped here like ``postgres_url``, and
a SQLite store scored from the same warehouse state to compare with; the warehouse and MLflow registry
are the session's ``served`` folder, read only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from crm_analytics.serving.app import create_app
from crm_analytics.serving.keys import KeyStore
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore
from tests.conftest import POSTGRES_ADMIN_URL
from tests.serving.conftest import Served
from tests.serving.test_routes import BOOKING

pytestmark = pytest.mark.postgres

NO_RATE_LIMIT = {"CRM_SERVING_RATE_PER_MINUTE": "1000000", "CRM_SERVING_RATE_BURST": "100000"}


@dataclass
class Scored:
    """The served folder's warehouse scored into one serving store, with keys in that store."""

    url: str
    env: dict[str, str]  # served.env with this store
    settings: Settings
    keys: dict[str, str]  # role -> secret
    folder: Path  # where ``crm score`` ran


@dataclass
class Stores:
    """The same warehouse state scored into PostgreSQL and, for comparison, into a fresh SQLite store
    (the session's own store may be older: other tests erase customers from the served folder)."""

    pg: Scored
    sqlite: Scored


def score_into(served: Served, url: str, folder: Path) -> Scored:
    env = {**served.env, "CRM_SERVING_STORE_URL": url}
    crm_score(env, folder)
    engine = ServingStore(url).upgrade().engine
    keys = {role: KeyStore(engine).create(f"test-{role}", [role])[1] for role in ("analyst", "booking")}
    engine.dispose()
    settings = served.settings.model_copy(update={"serving_store_url": url, "serving_exploration": 0.0})
    return Scored(url, env, settings, keys, folder)  # no exploration: both stores must rank alike


@pytest.fixture(scope="module")
def stores(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        folder = tmp_path_factory.mktemp("pg")
        pg = score_into(served, f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}", folder)
        sqlite = score_into(served, f"sqlite:///{folder / 'serving.db'}", folder)
        yield Stores(pg, sqlite)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg(stores: Stores) -> Scored:
    return stores.pg


@pytest.fixture(scope="module")
def pg_client(pg: Scored) -> Iterator[TestClient]:
    with TestClient(create_app(pg.settings)) as client:
        yield client


def crm_score(env: dict[str, str], folder: Path) -> dict[str, Any]:
    """``crm score --json`` with ``env`` in ``folder``; its report."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name, value in env.items():
            patch.setenv(name, value)
        result = CliRunner().invoke(cli, ["score", "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def key(scored: Scored, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {scored.keys[role]}"}


def rows(url: str, sql: str) -> list[dict[str, Any]]:
    engine = ServingStore(url).upgrade().engine
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]
    finally:
        engine.dispose()


def a_scored_customer(scored: Scored) -> str:
    query = (
        "SELECT customer_id FROM serving_customers WHERE scores IS NOT NULL AND history IS NOT NULL "
        "AND brief <> '[]' ORDER BY customer_id LIMIT 1"
    )
    return str(rows(scored.url, query)[0]["customer_id"])


def test_the_api_on_postgres_answers_as_on_sqlite(stores: Stores, pg_client: TestClient) -> None:
    pg, sqlite = stores.pg, stores.sqlite
    snapshot = "SELECT as_of, customers, models FROM serving_snapshots WHERE active"
    assert rows(pg.url, snapshot) == rows(sqlite.url, snapshot)
    assert pg_client.get("/readyz").status_code == 200
    customer = a_scored_customer(pg)
    scores = {"customer_ids": [customer, "U-nobody"]}
    offers = {"customer_id": customer, "booking": BOOKING}
    with TestClient(create_app(sqlite.settings)) as sqlite_client:
        on_pg = pg_client.post("/v1/scores", json=scores, headers=key(pg, "analyst"))
        on_sqlite = sqlite_client.post("/v1/scores", json=scores, headers=key(sqlite, "analyst"))
        offered_pg = pg_client.post("/v1/offers", json=offers, headers=key(pg, "booking"))
        offered_sqlite = sqlite_client.post("/v1/offers", json=offers, headers=key(sqlite, "booking"))
    assert on_pg.status_code == on_sqlite.status_code == 200
    assert on_pg.json()["scores"][0]["found"] is True
    assert on_pg.json() == on_sqlite.json()
    assert on_pg.headers["X-Model-Versions"] == on_sqlite.headers["X-Model-Versions"]
    assert offered_pg.status_code == offered_sqlite.status_code == 200
    assert offered_pg.json()["known_guest"] is True
    assert offered_pg.json()["brief"]["service_facts"]
    without_decision = [
        {k: v for k, v in r.json().items() if k != "decision_id"} for r in (offered_pg, offered_sqlite)
    ]
    assert without_decision[0] == without_decision[1]


def test_feedback_is_idempotent_on_postgres(pg: Scored, pg_client: TestClient) -> None:
    customer = a_scored_customer(pg)
    offers = {"customer_id": customer, "booking": BOOKING, "top_k": 1}
    decision = pg_client.post("/v1/offers", json=offers, headers=key(pg, "booking")).json()
    event = {
        "event_id": f"ev-pg-{uuid.uuid4().hex[:8]}",
        "event": "shown",
        "offer_id": decision["offers"][0]["offer_id"],
        "customer_id": customer,
        "occurred_at": "2026-03-01T10:00:00Z",
        "decision_id": decision["decision_id"],
        "booking": BOOKING,
    }

    def send(*events: dict[str, Any]) -> httpx.Response:
        return pg_client.post("/v1/feedback", json={"events": list(events)}, headers=key(pg, "booking"))

    assert send(event).json() == {"stored": 1, "duplicates": 0}
    assert send(event, event).json() == {"stored": 0, "duplicates": 2}
    assert send({**event, "occurred_at": "2026-03-01T10:05:00Z"}).status_code == 409
    stored = rows(
        pg.url, f"SELECT event, offer_id FROM serving_feedback WHERE event_id = '{event['event_id']}'"
    )
    assert stored == [{"event": "shown", "offer_id": event["offer_id"]}]


def test_a_second_score_replaces_the_snapshot_atomically_while_the_api_reads(
    pg: Scored, pg_client: TestClient
) -> None:
    before = rows(pg.url, "SELECT snapshot_id, customers FROM serving_snapshots")
    assert len(before) == 1
    customer = a_scored_customer(pg)
    answers: list[tuple[int, bool | None]] = []
    stop = threading.Event()

    def read() -> None:  # every answer during the switch is whole: the customer is always found
        while not stop.is_set():
            response = pg_client.post(
                "/v1/scores", json={"customer_ids": [customer]}, headers=key(pg, "analyst")
            )
            ok = response.status_code == 200
            answers.append((response.status_code, response.json()["scores"][0]["found"] if ok else None))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        report = crm_score(pg.env, pg.folder)
    finally:
        stop.set()
        reader.join(timeout=30)

    after = rows(pg.url, "SELECT snapshot_id, customers, active FROM serving_snapshots")
    assert after == [
        {"snapshot_id": report["snapshot_id"], "customers": before[0]["customers"], "active": True}
    ]
    assert report["snapshot_id"] != before[0]["snapshot_id"]
    for table in ("serving_customers", "serving_segment_members", "serving_contacts"):
        left = rows(pg.url, f"SELECT DISTINCT snapshot_id FROM {table}")
        assert left == [{"snapshot_id": report["snapshot_id"]}], table
    assert answers
    assert set(answers) == {(200, True)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"crm serve exited with {process.returncode}"
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"crm serve not ready after {seconds:.0f} s")


@pytest.mark.slow  # starts `crm serve` with two worker processes per store
@pytest.mark.parametrize("which", ["pg", "sqlite"])
def test_crm_serve_with_two_workers_on_either_store(stores: Stores, which: str, tmp_path: Path) -> None:
    """Two worker processes read and write (feedback) the same store at once; SIGTERM ends them."""
    scored: Scored = getattr(stores, which)
    port, crm = free_port(), Path(sys.executable).with_name("crm")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | scored.env | NO_RATE_LIMIT
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [str(crm), "serve", "--workers", "2", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(base, process)
        customer = a_scored_customer(scored)
        run = uuid.uuid4().hex[:8]
        offers = {"customer_id": customer, "booking": BOOKING, "top_k": 1}
        decided = httpx.post(f"{base}/v1/offers", json=offers, headers=key(scored, "booking"), timeout=30)
        decision = decided.json()

        def call(i: int) -> int:
            body: dict[str, Any]
            if i % 3 == 0:
                path, body, role = "/v1/offers", {"customer_id": customer, "booking": BOOKING}, "booking"
            elif i % 3 == 1:
                path, body, role = "/v1/scores", {"customer_ids": [customer]}, "analyst"
            else:
                shown = {
                    "event_id": f"two-workers-{run}-{i}",
                    "event": "shown",
                    "offer_id": decision["offers"][0]["offer_id"],
                    "customer_id": customer,
                    "occurred_at": "2026-03-01T10:00:00Z",
                    "decision_id": decision["decision_id"],
                    "booking": BOOKING,
                }
                path, body, role = "/v1/feedback", {"events": [shown]}, "booking"
            return httpx.post(f"{base}{path}", json=body, headers=key(scored, role), timeout=30).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(call, range(50)))
        assert statuses == [200] * 50
        stored = rows(
            scored.url,
            f"SELECT COUNT(*) AS n FROM serving_feedback WHERE event_id LIKE 'two-workers-{run}-%'",
        )
        assert stored == [{"n": 16}]  # every write acknowledged by either worker is there
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()[-2000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
