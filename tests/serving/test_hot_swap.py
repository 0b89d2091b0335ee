"""Hot swap: moving ``@champion`` while requests run changes the served model without a failed request,
and a champion that fails to load leaves the old models serving. Answers name the versions behind what
they carry: inline rows the live champions, stored scores the snapshot's until it is rescored
(``crm promote`` rescores at once: every answer's versions match its scores throughout).

Each test works on a copy of the served folder (its MLflow registry, serving store and keys), so the
session's ``served`` registry keeps ``crm-churn@champion`` at version 1 for the other tests. The copy's
registry still points at the original artifact files; nothing here writes to them.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from crm_analytics.datasets.demo.config import DEMO_CUTOFF as CALIBRATION_CUTOFF
from crm_analytics.features.store import read_features
from crm_analytics.jobs import status as status_job
from crm_analytics.jobs import train
from crm_analytics.jobs.score import latest_cutoff
from crm_analytics.models.churn.family import NAME as CHURN_NAME
from crm_analytics.models.gate import CHAMPION
from crm_analytics.serving.app import create_app
from crm_analytics.serving.booking_rules import example_booking
from crm_analytics.settings import Settings, load_settings
from crm_analytics.store import ServingStore
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse
from tests.serving.conftest import Served, auth

RELOAD_SECONDS = 0.5
SWAP_DEADLINE_SECONDS = 20.0  # a reload loads all three champions again; slow under a busy test machine
BOOKING = example_booking() | {"nights": 2}  # checks in 30 days from today


@dataclass
class Traffic:
    """What the request thread saw: (path, status, X-Model-Versions) in order, and the bodies."""

    seen: list[tuple[str, int, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def since(self, start: int) -> list[tuple[str, int, str]]:
        with self.lock:
            return self.seen[start:]

    def count(self) -> int:
        with self.lock:
            return len(self.seen)


@dataclass
class Copy:
    """A copy of the served folder: settings with a fast reload, its registry, and the shared keys."""

    settings: Settings
    registry: MlflowClient
    served: Served


@pytest.fixture
def copy(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Copy:
    folder = tmp_path / "served"
    shutil.copytree(served.folder, folder)
    for name, value in served.env.items():
        monkeypatch.setenv(name, value.replace(str(served.folder), str(folder)))
    settings = load_settings(
        serving_reload_seconds=RELOAD_SECONDS, serving_rate_per_minute=1_000_000, serving_rate_burst=100_000
    )
    return Copy(settings, configure(settings), served)


@pytest.fixture
def running(copy: Copy) -> Iterator[tuple[TestClient, Traffic]]:
    """The app on the copy, with a thread calling /v1/scores and /v1/offers until the test ends."""
    customer = a_scored_customer(copy.settings)
    requests: list[tuple[str, dict[str, object], dict[str, str]]] = [
        ("/v1/scores", {"customer_ids": scored_customers(copy.settings)}, auth(copy.served, "analyst")),
        ("/v1/offers", {"customer_id": customer, "booking": BOOKING}, auth(copy.served, "booking")),
        ("/v1/scores#rows", {"rows": [a_feature_row(copy.settings)]}, auth(copy.served, "analyst")),
    ]
    traffic, stop = Traffic(), threading.Event()

    def call(client: TestClient) -> None:
        while not stop.is_set():
            for path, body, headers in requests:
                response = client.post(path.split("#")[0], json=body, headers=headers)
                with traffic.lock:
                    traffic.seen.append(
                        (path, response.status_code, response.headers.get("X-Model-Versions", ""))
                    )
                    traffic.bodies.append(response.json())

    with TestClient(create_app(copy.settings), raise_server_exceptions=False) as client:
        thread = threading.Thread(target=call, args=(client,), daemon=True)
        thread.start()
        try:
            wait_for(lambda: traffic.count() >= 4, "the first responses")
            yield client, traffic
        finally:
            stop.set()
            thread.join(timeout=30)
    assert not thread.is_alive()


def scored_customers(settings: Settings, n: int = 20) -> list[str]:
    query = (
        f"SELECT customer_id FROM serving_customers WHERE scores IS NOT NULL ORDER BY customer_id LIMIT {n}"
    )
    with ServingStore(settings.serving_store_url).upgrade().engine.connect() as conn:
        return [str(c) for c in conn.execute(sa.text(query)).scalars()]


def a_feature_row(settings: Settings) -> dict[str, Any]:
    """One customer's stored features as an inline ``/v1/scores`` row (BTYD columns and the rest)."""
    with Warehouse(settings.warehouse_url) as warehouse:
        table = read_features(warehouse, latest_cutoff(warehouse))
    row = table.drop(columns=["customer_id"]).iloc[0]
    btyd = ("frequency", "recency", "T", "monetary_value")
    numeric = {k: (None if pd.isna(v) else float(v)) for k, v in row.items() if isinstance(v, (int, float))}
    return {k: numeric[k] for k in btyd} | {"features": {k: v for k, v in numeric.items() if k not in btyd}}


def stored_churn(settings: Settings) -> dict[str, float]:
    """The served snapshot's churn probability per customer."""
    with ServingStore(settings.serving_store_url).upgrade().engine.connect() as conn:
        rows = conn.execute(sa.text(_ACTIVE_SCORES)).all()
    return {cid: round(json.loads(scores)["churn_probability"], 6) for cid, scores in rows if scores}


_ACTIVE_SCORES = (
    "SELECT c.customer_id, c.scores FROM serving_customers c "
    "JOIN serving_snapshots s ON s.snapshot_id = c.snapshot_id WHERE s.active"
)


def a_scored_customer(settings: Settings) -> str:
    query = "SELECT customer_id FROM serving_customers WHERE scores IS NOT NULL AND history IS NOT NULL"
    with ServingStore(settings.serving_store_url).upgrade().engine.connect() as conn:
        return str(conn.execute(sa.text(query)).scalars().first())


def wait_for(condition: Callable[[], bool], what: str, seconds: float = SWAP_DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.05)


def register_churn(registry: MlflowClient, source: str | None = None) -> str:
    """A new crm-churn version of version 1's model and run (valid), or of ``source`` (a broken one)."""
    first = registry.get_model_version(CHURN_NAME, "1")
    version = registry.create_model_version(
        CHURN_NAME, source=source or str(first.source), run_id=first.run_id
    )
    return str(version.version)


def header(churn: str) -> str:
    """The live champions' versions (what the API computes with)."""
    return f"crm-churn={churn},crm-clv=1,crm-offers=1"


def stored(churn: str) -> str:
    """A snapshot's versions: the champions that scored it and the segment definitions it holds."""
    segments = "crm-segments-behaviour=1,crm-segments-rfm=1,crm-segments-value-risk=1"
    return f"crm-churn={churn},crm-clv=1,crm-offers=1,{segments}"


def assert_all_ok(seen: list[tuple[str, int, str]]) -> None:
    failed = [(path, status) for path, status, _ in seen if status != 200]
    assert not failed, f"{len(failed)} of {len(seen)} requests failed, e.g. {failed[:3]}"


def test_promoting_a_champion_swaps_it_in_while_requests_run(
    copy: Copy, running: tuple[TestClient, Traffic]
) -> None:
    client, traffic = running
    assert client.app.state.models.current.header() == header("1")  # type: ignore[attr-defined]
    version = register_churn(copy.registry)
    start = traffic.count()
    copy.registry.set_registered_model_alias(CHURN_NAME, CHAMPION, version)  # as a notebook would

    wait_for(lambda: any(h == header(version) for _, _, h in traffic.since(start)), "the new version")
    swapped = next(i for i, (_, _, h) in enumerate(traffic.since(start)) if h == header(version))
    wait_for(lambda: traffic.count() >= start + swapped + 10, "responses after the swap")

    seen = traffic.since(start)
    assert_all_ok(seen)
    inline = [h for path, _, h in seen if path == "/v1/scores#rows"]
    assert set(inline[: inline.index(header(version))]) <= {header("1")}
    assert set(inline[inline.index(header(version)) :]) == {header(version)}  # never back to the old one
    # stored scores were made by v1: answers say so until a refresh (or `crm promote`) rescores them
    assert {h for path, _, h in seen if path != "/v1/scores#rows"} == {stored("1")}


@pytest.mark.slow  # a whole demo chain: in `make test`, not in the fast loop
def test_crm_promote_rescores_and_every_answer_names_the_versions_of_its_scores(
    copy: Copy, running: tuple[TestClient, Traffic]
) -> None:
    _, traffic = running
    served_day = ServingStore(copy.settings.serving_store_url).upgrade().active()
    assert served_day is not None
    candidate = train.train(copy.settings, "churn", CALIBRATION_CUTOFF, seed=7)  # other folds: other scores
    before = stored_churn(copy.settings)
    start = traffic.count()
    report = train.promote_and_rescore(copy.settings, "churn", candidate.version, force=True, reason="test")
    assert report.rescored is not None
    assert report.rescored.as_of == served_day.as_of
    after = stored_churn(copy.settings)
    changed = {cid for cid in before if before[cid] != after.get(cid)}
    assert changed, "the new churn model scores no customer differently"
    switched = traffic.count()
    wait_for(lambda: traffic.count() >= switched + 9, "responses after the rescore")

    seen, bodies = traffic.since(start), traffic.bodies[start:]
    assert_all_ok(seen)
    expected = {"1": before, candidate.version: after}
    versions_seen = set()
    for (path, _, versions), body in zip(seen, bodies, strict=True):
        if path != "/v1/scores":
            continue
        churn_version = body["models"][CHURN_NAME]
        assert versions == stored(churn_version)
        assert body["as_of"] == served_day.as_of
        versions_seen.add(churn_version)
        for score in body["scores"]:
            assert round(score["churn_probability"], 6) == expected[churn_version][score["customer_id"]]
    assert versions_seen == {"1", candidate.version}  # answers before the switch and after it
    assert [h for path, _, h in seen if path == "/v1/scores"][-1] == stored(candidate.version)
    status = status_job.status(copy.settings)
    assert status.pending == []
    assert status.served
    assert status.served["models"][CHURN_NAME] == candidate.version


def test_a_champion_that_fails_to_load_leaves_the_old_models_serving(
    copy: Copy, running: tuple[TestClient, Traffic], tmp_path: Path
) -> None:
    client, traffic = running
    holder = client.app.state.models  # type: ignore[attr-defined]
    no_model = tmp_path / "not-a-model"
    no_model.mkdir()
    (no_model / "README.txt").write_text("an artifact folder without an MLmodel file\n")
    broken = register_churn(copy.registry, source=str(no_model))
    start = traffic.count()
    copy.registry.set_registered_model_alias(CHURN_NAME, CHAMPION, broken)

    wait_for(lambda: holder.last_error is not None, "the failed reload")
    failed_at = traffic.count()
    wait_for(lambda: traffic.count() >= failed_at + 10, "responses after the failed reload")
    seen = traffic.since(start)
    assert_all_ok(seen)
    assert {h for _, _, h in seen} == {header("1"), stored("1")}  # live v1 and the snapshot's v1
    assert client.get("/readyz").status_code == 200

    good = register_churn(copy.registry)  # a good champion after a failed one is still picked up
    copy.registry.set_registered_model_alias(CHURN_NAME, CHAMPION, good)
    again = traffic.count()
    wait_for(
        lambda: any(h == header(good) for path, _, h in traffic.since(again) if path == "/v1/scores#rows"),
        "the good version after the broken one",
    )
    assert holder.last_error is None
    assert_all_ok(traffic.since(start))
