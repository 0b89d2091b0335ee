"""`crm erase` leaves no byte of the person in any file of the data folder: the warehouse and its WAL,
its read copy, the serving store and its WAL (decision log and feedback inside), the access log, and
what killed runs left behind (staging tables, an unswitched serving snapshot), while the API runs."""

from __future__ import annotations

import json
import re
import shutil
import stat
import uuid
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from crm_analytics.serving.app import create_app
from crm_analytics.serving.booking_rules import example_booking
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore
from crm_analytics.store.tables import customers, snapshots
from crm_analytics.warehouse import Warehouse
from tests.conftest import project_env
from tests.serving.conftest import Served, auth

# a guest of a day's delivery, every value of theirs unlike any other guest's
GUEST = {
    "first_name": "Zephyrine",
    "last_name": "Quillfeather",
    "email": "Zephyrine.Quillfeather@erase.example",
    "phone": "+44 20 7946 0321",
    "street": "7 Marigold Crescent",
    "city": "London",
    "postcode": "E1 6AN",
    "country": "GB",
    "birth_date": pd.Timestamp("1980-02-03"),
    "marketing_consent": True,
    "loyalty_id": "L0999001",
    "allergies": "feathers",
    "accessibility_needs": None,
    "room_preferences": None,
}
ACCOUNTS = {"booking": "G0999001", "crm": "C0999001"}
STAY = {
    "transaction_id": "B0999001",
    "customer_id": ACCOUNTS["booking"],
    "source": "booking",
    "timestamp": pd.Timestamp("2025-12-31 12:00:00"),
    "amount": 420.0,
    "currency": "EUR",
    "type": "purchase",
    "channel": "direct",
    "reference_id": None,
    "hotel_id": "H01",
    "check_in": pd.Timestamp("2026-01-20"),
    "nights": 2,
    "guests": 1,
    "room_type": "deluxe",
    "purpose": "leisure",
}
# how they may be written in a file: as given, normalised (E.164, lower case), or in parts
NEEDLES = (
    GUEST["email"],
    "+44 20 7946 0321",
    "+442079460321",
    "7946 0321",
    "Zephyrine",
    "Quillfeather",
    "Marigold",
    "L0999001",
    *ACCOUNTS.values(),
    STAY["transaction_id"],
)
SOURCE_FILES = "demo"  # the source systems' exports the demo generator wrote: not ours to erase


def deliver(folder: Path, day: str) -> Path:
    """The guest's records in the booking system and the CRM as updated on ``day``, and their stay, as
    that day's delivery."""
    folder = folder / day
    folder.mkdir(parents=True)
    for source, account in ACCOUNTS.items():
        record = {"source": source, "source_customer_id": account, **GUEST, "updated_at": pd.Timestamp(day)}
        pd.DataFrame([record]).to_parquet(folder / f"customers_{source}.parquet")
    pd.DataFrame([STAY]).to_parquet(folder / "transactions.parquet")
    return folder


def files_holding(data: Path, needles: tuple[str, ...]) -> dict[str, list[str]]:
    """Every file under ``data`` (the source exports aside) whose bytes hold a needle, any case."""
    pattern = re.compile("|".join(re.escape(n) for n in needles).encode(), re.IGNORECASE)
    found = {}
    for path in sorted(data.rglob("*")):
        if path.is_file() and SOURCE_FILES not in path.relative_to(data).parts[:1]:
            hits = sorted({m.group().decode() for m in pattern.finditer(path.read_bytes())})
            if hits:
                found[str(path.relative_to(data))] = hits
    return found


def leave_killed_runs(settings: Settings, customer_id: str) -> None:
    """What an ingest, a scoring run and a serving snapshot killed half-way leave: staging tables
    holding the guest's raw rows and scores, and a snapshot never switched to holding their row."""
    accounts = ", ".join(f"'{a}'" for a in ACCOUNTS.values())
    with Warehouse(settings.warehouse_url) as warehouse, warehouse.transaction() as execute:
        batch = uuid.uuid4().hex
        execute(
            f'CREATE TABLE "_stage_{batch}" AS '
            f"SELECT * FROM customer_records WHERE source_customer_id IN ({accounts})"
        )
        execute(
            f'CREATE TABLE "_stage_{batch}_q" AS SELECT * FROM transactions WHERE customer_id IN ({accounts})'
        )
        execute(
            f'CREATE TABLE "_stage_scores_{uuid.uuid4().hex}" AS '
            f"SELECT * FROM customer_scores WHERE customer_id = '{customer_id}'"
        )
    store = ServingStore(settings.serving_store_url)
    with store.engine.begin() as conn:
        active = conn.execute(select(snapshots).where(snapshots.c.active)).mappings().one()
        row = conn.execute(select(customers).where(customers.c.customer_id == customer_id)).mappings().one()
        conn.execute(insert(snapshots).values(dict(active) | {"snapshot_id": "killed", "active": False}))
        conn.execute(insert(customers).values(dict(row) | {"snapshot_id": "killed"}))
    store.engine.dispose()


@pytest.mark.slow  # a whole demo chain: in `make test`, not in the fast loop
def test_erase_leaves_no_bytes_of_the_person_in_the_data_folder(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    shutil.copytree(served.folder, project)  # the served chain's own folder stays as other tests use it
    env = project_env(project) | {"CRM_INCOMING_DIR": str(project / "incoming")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    deliver(project / "incoming", "2025-12-31")
    refreshed = CliRunner().invoke(cli, ["refresh", "--json"])
    assert refreshed.exit_code == 0, refreshed.output
    store = ServingStore(settings.serving_store_url)
    (customer,) = store.find_contact("email", GUEST["email"].lower())
    store.engine.dispose()
    needles = (*NEEDLES, customer)
    data = project / "data"

    with TestClient(create_app(settings)) as client:  # the API runs throughout, its store open
        profile = client.get(f"/v1/customers/{customer}", headers=auth(served, "analyst"))
        assert profile.status_code == 200
        booking = example_booking()
        offered = client.post(
            "/v1/offers",
            json={"guest": {"email": GUEST["email"]}, "booking": booking},
            headers=auth(served, "booking"),
        )
        assert offered.status_code == 200
        assert offered.json()["known_guest"] is True
        shown = {
            "event_id": f"fb-{offered.json()['decision_id']}",
            "event": "shown",
            "offer_id": offered.json()["offers"][0]["offer_id"],  # the guest: from the decision log
            "occurred_at": pd.Timestamp.now("UTC").isoformat(),
            "decision_id": offered.json()["decision_id"],
            "booking": booking,
        }
        feedback = client.post("/v1/feedback", json={"events": [shown]}, headers=auth(served, "booking"))
        assert feedback.status_code == 200
        leave_killed_runs(settings, customer)
        before = files_holding(data, needles)
        assert {"warehouse.duckdb", "warehouse.read.duckdb", "access.jsonl"} <= set(before), before
        assert {"serving.db", "serving.db-wal"} & set(before), before

        erased = CliRunner().invoke(cli, ["erase", customer, "--yes", "--json"])

        assert erased.exit_code == 0, erased.output
        left = files_holding(data, needles)
        assert left == {}, f"the person is still in {sorted(left)}: {left}"
        report = json.loads(erased.stdout)
        assert (report["staging_tables_dropped"], report["serving_rows_discarded"]) == (3, 1)
        assert report["warehouse_rewritten"] is True
        assert report["serving_store_compacted"] is True
        assert stat.S_IMODE((data / "warehouse.duckdb").stat().st_mode) == 0o600
        others = store_customer_ids(settings)
        assert customer not in others
        assert client.get(f"/v1/customers/{others[0]}", headers=auth(served, "analyst")).status_code == 200

    summary = CliRunner().invoke(cli, ["warehouse", "summary", "--json"])  # the rewritten copy reads
    assert summary.exit_code == 0, summary.output
    later = deliver(tmp_path / "later", "2026-01-01")  # the source systems send them again
    again = CliRunner().invoke(cli, ["ingest", str(later), "--json"])  # into the rewritten warehouse
    assert again.exit_code == 0, again.output
    totals = json.loads(again.stdout)["totals"]
    assert (totals["customer_records"]["rows_suppressed"], totals["transactions"]["rows_suppressed"]) == (
        2,
        1,
    )
    assert files_holding(data, needles) == {}


def store_customer_ids(settings: Settings) -> list[str]:
    store = ServingStore(settings.serving_store_url)
    with store.engine.connect() as conn:
        ids = [str(c) for c in conn.execute(select(customers.c.customer_id)).scalars()]
    store.engine.dispose()
    return sorted(ids)
