"""The founding story at the desk: a dust-allergic guest whose phone is on record as "+33 1 62 55 24 99"
is recognised however the desk types it (the hotel's country reads a national number) and gets the
allergy brief, never the carpeted upgrades.

Her records go through the real pipeline on a copy of the served chain: ingest, profiles, `crm score`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from crm_analytics.serving.app import create_app
from crm_analytics.serving.booking_rules import example_booking
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore
from crm_analytics.warehouse import Warehouse
from tests.conftest import project_env
from tests.serving.conftest import Served, auth

ON_RECORD = "+33 1 62 55 24 99"
WRITINGS = (
    "+33 1 62 55 24 99",
    "+33 (0)1 62 55 24 99",
    "0033 1 62 55 24 99",
    "01 62 55 24 99",
    "01.62.55.24.99",
    "01-62-55-24-99",
    "0162552499",
    "+33162552499",
    "+33.1.62.55.24.99",
    " (0)1 62 55 24 99 ",
)
PARIS = example_booking() | {"hotel_id": "H02", "room_type": "standard", "upgrade_available": True}
CARPETED = {"O06", "O07"}  # the deluxe and suite upgrades


@dataclass
class Story:
    settings: Settings
    customer_id: str


def _story_files(folder: Path) -> None:
    """Camille's records in the three systems (the booking system keeps the national format) and a stay."""
    person = {
        "first_name": "Camille",
        "last_name": "Rousseau",
        "email": None,
        "street": "4 Rue des Lilas",
        "city": "Paris",
        "postcode": "75011",
        "country": "FR",
        "birth_date": "1975-04-02",
    }
    records = {
        "crm": {"source_customer_id": "C9990777", "phone": ON_RECORD, "allergies": "dust"},
        "booking": {"source_customer_id": "G9990777", "phone": "01 62 55 24 99"},
        "billing": {"source_customer_id": "A9990777", "phone": "+33162552499"},
    }
    for source, own in records.items():
        row = person | own | {"source": source, "updated_at": "2025-03-01T10:00:00"}
        pd.DataFrame([row]).to_csv(folder / f"customers_{source}_story.csv", index=False)
    stay = {
        "transaction_id": "T-CAMILLE-1",
        "customer_id": "G9990777",
        "source": "booking",
        "timestamp": "2025-03-01T10:00:00",
        "amount": 480.0,
        "currency": "EUR",
        "type": "purchase",
        "hotel_id": "H02",
        "check_in": "2025-04-10",
        "nights": 3,
        "guests": 1,
        "room_type": "standard",
    }
    pd.DataFrame([stay]).to_csv(folder / "transactions_story.csv", index=False)


@pytest.fixture(scope="module")
def story(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Story:
    """The served chain's data copied (models shared), Camille ingested, profiles built, scored."""
    folder = tmp_path_factory.mktemp("story")
    shutil.copytree(served.folder / "data", folder / "data", ignore=shutil.ignore_patterns("demo"))
    # the models are shared, and so is the erasure key: the copied warehouse holds the suppressions of any
    # erasure another test of this worker made on the served chain before
    shared = ("CRM_MLFLOW", "CRM_ERASURE_KEY")
    env = project_env(folder) | {k: v for k, v in served.env.items() if k.startswith(shared)}
    (folder / "raw").mkdir()
    _story_files(folder / "raw")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name, value in env.items():
            patch.setenv(name, value)
        runner = CliRunner()
        for command in (["ingest", str(folder / "raw")], ["profiles", "build"], ["score"]):
            result = runner.invoke(cli, command)
            assert result.exit_code == 0, (command, result.output)
        settings = Settings()
    return Story(settings, _customer_of(settings))


def _customer_of(settings: Settings) -> str:
    with Warehouse(settings.warehouse_url) as warehouse:
        found = warehouse.fetch(
            "SELECT DISTINCT customer_id FROM customer_links WHERE source_customer_id LIKE '%9990777'"
        )
    assert len(found) == 1, "Camille's three records are one customer"
    return str(found["customer_id"].iloc[0])


def decided_for(story: Story, decision_id: str) -> str | None:
    """The guest the service logged for one of its answers (the answer itself does not name them)."""
    return ServingStore(story.settings.serving_store_url).decisions([decision_id])[decision_id].customer_id


def _offers(client: TestClient, served: Served, phone: str, booking: dict[str, Any]) -> Any:
    return client.post(
        "/v1/offers",
        json={"guest": {"phone": phone}, "booking": booking, "top_k": 10},
        headers=auth(served, "booking"),
    )


def test_post_offers_finds_the_guest_however_the_desk_writes_her_phone(story: Story, served: Served) -> None:
    with TestClient(create_app(story.settings)) as client:
        for phone in WRITINGS:
            response = _offers(client, served, phone, PARIS)
            assert response.status_code == 200, phone
            body = response.json()
            assert (body["known_guest"], body["matched_by"]) == (True, "phone"), phone
            assert decided_for(story, body["decision_id"]) == story.customer_id, phone
            allergies = {f["value"] for f in body["brief"]["service_facts"] if f["fact"] == "allergy"}
            assert allergies == {"dust"}, phone
            assert body["offers"], phone
            assert not CARPETED & {o["offer_id"] for o in body["offers"]}, phone


def test_post_offers_reads_a_national_number_in_the_hotels_country(story: Story, served: Served) -> None:
    """At the London hotel "01 62 55 24 99" is a British number (not hers); written internationally it is."""
    london = PARIS | {"hotel_id": "H01"}
    with TestClient(create_app(story.settings)) as client:
        national = _offers(client, served, "01 62 55 24 99", london)
        international = _offers(client, served, "+33 (0)1 62 55 24 99", london)
    assert national.status_code == 200
    assert national.json()["known_guest"] is False
    assert international.status_code == 200
    assert decided_for(story, international.json()["decision_id"]) == story.customer_id


@pytest.mark.parametrize("phone", ["12", "01 62", "+33 1 23", "not a phone", "+999 1234 5678", "0" * 40])
def test_post_offers_invalid_phone_is_an_unknown_guest(story: Story, served: Served, phone: str) -> None:
    with TestClient(create_app(story.settings)) as client:
        response = _offers(client, served, phone, PARIS)
    assert response.status_code == 200
    assert response.json()["known_guest"] is False
