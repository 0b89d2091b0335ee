"""Survivorship: trusted recency wins, provenance kept, facts unioned, undecidable conflicts listed."""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import pandas as pd
import pytest

from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.models.offers.evaluation import allergic_customers
from crm_analytics.profiles.build import build_profiles
from crm_analytics.profiles.survivorship import survive
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load


def version(source: str, updated_at: str, **fields: object) -> dict[str, object]:
    return {
        "customer_id": "U1",
        "source": source,
        "source_customer_id": f"{source}-1",
        "updated_at": pd.Timestamp(updated_at),
        **fields,
    }


def test_most_recent_trusted_value_wins_with_its_provenance() -> None:
    records = pd.DataFrame(
        [
            version("crm", "2024-01-01", street="1 Old Road", city="Leeds", postcode="LS1 1AA", country="GB"),
            version(
                "billing", "2025-03-01", street="9 New Street", city="York", postcode="YO1 7HH", country="GB"
            ),
            version(
                "spreadsheet",
                "2025-09-01",
                street="5 Typo Lane",
                city="Hull",
                postcode="HU1 1AA",
                country="GB",
            ),
        ]
    )
    profile = survive(records).profiles.iloc[0]
    assert (profile["street"], profile["city"], profile["postcode"]) == ("9 New Street", "York", "YO1 7HH")
    assert profile["address_source"] == "billing"
    assert profile["address_updated_at"] == pd.Timestamp("2025-03-01")
    assert profile["sources"] == "billing,crm,spreadsheet"


def test_an_untrusted_source_fills_a_field_only_no_trusted_source_has() -> None:
    records = pd.DataFrame(
        [
            version("crm", "2024-01-01", email="ann@example.com"),
            version("spreadsheet", "2025-09-01", email="typo@example.com", phone="+4420123456"),
        ]
    )
    profile = survive(records).profiles.iloc[0]
    assert (profile["email"], profile["email_source"]) == ("ann@example.com", "crm")
    assert (profile["phone"], profile["phone_source"]) == ("+4420123456", "spreadsheet")


def test_a_relay_address_survives_only_when_nothing_else_is_known() -> None:
    relay = version("booking", "2025-09-01", email="ann123@guest.ota-relay.example")
    own = version("billing", "2024-01-01", email="ann@example.com")
    assert survive(pd.DataFrame([relay, own])).profiles.iloc[0]["email"] == "ann@example.com"
    assert survive(pd.DataFrame([relay])).profiles.iloc[0]["email"] == "ann123@guest.ota-relay.example"


def test_disagreeing_birth_dates_are_listed_for_review_not_resolved() -> None:
    records = pd.DataFrame(
        [
            version("crm", "2024-01-01", birth_date=pd.Timestamp("1980-05-01"), loyalty_id="L1"),
            version("booking", "2025-01-01", birth_date=pd.Timestamp("1981-05-01"), loyalty_id="L1"),
        ]
    )
    survivors = survive(records)
    profile = survivors.profiles.iloc[0]
    assert pd.isna(profile["birth_date"])
    assert pd.isna(profile["birth_date_source"])
    assert profile["loyalty_id"] == "L1"
    conflict = survivors.conflicts.set_index("field").loc["birth_date"]
    assert "does not change over time" in conflict["reason"]
    candidates = json.loads(conflict["candidates"])
    assert {c["source"] for c in candidates} == {"crm", "booking"}
    assert len(survivors.conflicts) == 1


def test_service_facts_are_unioned_across_sources_and_versions_never_dropped() -> None:
    records = pd.DataFrame(
        [
            version("crm", "2024-01-01", allergies="dust;Feathers"),
            version("crm", "2025-01-01", allergies="dust", room_preferences="quiet room"),
            version("booking", "2025-06-01", allergies="feathers", accessibility_needs="walk-in shower"),
        ]
    )
    facts = survive(records).service_facts.set_index(["fact", "source", "value"])
    assert facts.loc[("allergy", "crm", "dust"), "last_confirmed"] == pd.Timestamp("2025-01-01")
    assert facts.loc[("allergy", "crm", "Feathers"), "last_confirmed"] == pd.Timestamp("2024-01-01")
    assert facts.loc[("allergy", "booking", "feathers"), "last_confirmed"] == pd.Timestamp("2025-06-01")
    assert ("accessibility", "booking", "walk-in shower") in facts.index
    assert ("room_preference", "crm", "quiet room") in facts.index
    assert len(facts) == 5


STORY = {
    "first_name": "Grace",
    "last_name": "Okafor",
    "email": "grace.okafor@example.org",
    "loyalty_id": "L9990001",
    "birth_date": pd.Timestamp("1968-03-14"),
    "marketing_consent": True,
    "country": "GB",
}
OLD_ADDRESS = {"street": "12 Mill Road", "city": "Manchester", "postcode": "M14 5TQ"}
NEW_ADDRESS = {"street": "3 Harbour View", "city": "Edinburgh", "postcode": "EH6 6JJ"}


def add_founding_story(data: object) -> None:
    """Grace's allergy is in the CRM only; she moved, and only billing has the new address."""
    story = {
        "crm": STORY
        | OLD_ADDRESS
        | {"updated_at": "2024-02-01", "allergies": "dust;feathers", "phone": "+44 161 496 0000"},
        "booking": STORY
        | OLD_ADDRESS
        | {"updated_at": "2024-06-01", "loyalty_id": None, "phone": "+44 161 496 0000"},
        "billing": STORY
        | NEW_ADDRESS
        | {"updated_at": "2025-03-01", "loyalty_id": None, "phone": "+441614960000"},
    }
    ids = {"crm": "C9990001", "booking": "G9990001", "billing": "A9990001"}
    for source, fields in story.items():
        frame = data.customers[source]  # type: ignore[attr-defined]
        row = (
            {c: None for c in frame.columns} | fields | {"source": source, "source_customer_id": ids[source]}
        )
        row["updated_at"] = pd.Timestamp(row["updated_at"])
        data.customers[source] = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)  # type: ignore[attr-defined]
    purchase = data.transactions.iloc[[0]].copy()  # type: ignore[attr-defined]
    purchase[["transaction_id", "customer_id", "type", "amount"]] = [
        "T-GRACE-1",
        "G9990001",
        "purchase",
        420.0,
    ]
    purchase["reference_id"] = None
    data.transactions = pd.concat([data.transactions, purchase], ignore_index=True)  # type: ignore[attr-defined]


def test_founding_story_one_profile_with_the_new_address_and_the_allergy(
    tmp_path: Path, settings: Settings
) -> None:
    data = generate_demo(DemoConfig(customers=300, seed=8))
    add_founding_story(data)
    write_demo(data, tmp_path / "raw")
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        load(warehouse, tmp_path / "raw")
        build_profiles(warehouse, settings, log_run=False)
        links = warehouse.fetch("SELECT * FROM customer_links WHERE source_customer_id LIKE '%999000%'")
        assert len(links) == 3
        assert links["customer_id"].nunique() == 1, "Grace's three records must be one customer"
        grace = links["customer_id"].iloc[0]
        profile = warehouse.fetch(f"SELECT * FROM customer_profiles WHERE customer_id = '{grace}'").iloc[0]
        assert (profile["street"], profile["postcode"]) == (NEW_ADDRESS["street"], NEW_ADDRESS["postcode"])
        assert profile["address_source"] == "billing"
        facts = warehouse.fetch(f"SELECT * FROM customer_service_facts WHERE customer_id = '{grace}'")
        allergies = facts[facts["fact"] == "allergy"]
        assert set(allergies["value"]) == {"dust", "feathers"}
        assert set(allergies["source"]) == {"crm"}
        # the booking desk's view: her booking-system purchase is hers, and offers see the allergy
        assert grace in allergic_customers(warehouse.ibis)
        features = feature_table(
            warehouse.ibis, FeatureConfig(as_of=pd.Timestamp("2026-01-01").date())
        ).execute()
        assert grace in set(features["customer_id"])
        assert "G9990001" not in set(features["customer_id"])


def test_split_person_gets_one_history(linked_demo: object) -> None:
    """A guest with two booking accounts (one an OTA relay profile) becomes one feature row."""
    warehouse = linked_demo.warehouse  # type: ignore[attr-defined]
    identities = pd.read_parquet(linked_demo.raw / "truth" / "identities.parquet")  # type: ignore[attr-defined]
    booking = identities[identities["source"] == "booking"]
    split = booking[booking.duplicated("person_id", keep=False)]
    transactions = warehouse.fetch("SELECT customer_id, type FROM transactions WHERE type = 'purchase'")
    with_purchases = split[split["source_customer_id"].isin(transactions["customer_id"])]
    person = with_purchases[with_purchases.duplicated("person_id", keep=False)]["person_id"].iloc[0]
    accounts = list(split.loc[split["person_id"] == person, "source_customer_id"])
    as_of = pd.Timestamp("2025-12-31").date()
    features = feature_table(warehouse.ibis, FeatureConfig(as_of=as_of)).execute().set_index("customer_id")
    links = warehouse.fetch("SELECT source_customer_id, customer_id FROM customer_links").set_index(
        "source_customer_id"
    )
    unified = links.loc[accounts, "customer_id"]
    assert unified.nunique() == 1
    assert not set(accounts) & set(features.index)
    row = features.loc[unified.iloc[0]]
    unlinked = ibis.duckdb.connect()  # the same transactions with no customer links
    for table in ("transactions", "transaction_items"):
        unlinked.create_table(table, warehouse.ibis.table(table).execute())
    separate = feature_table(unlinked, FeatureConfig(as_of=as_of)).execute().set_index("customer_id")
    assert set(accounts) <= set(separate.index)
    assert row["spend_total"] == pytest.approx(separate.loc[accounts, "spend_total"].sum())
    days = separate.loc[accounts, "frequency"] + 1
    assert days.max() <= row["frequency"] + 1 <= days.sum()
