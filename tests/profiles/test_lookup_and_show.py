"""The booking desk's lookup and `crm profiles show`: details in, unified customer out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm_analytics.profiles.lookup import ProfileIndex
from crm_analytics.profiles.show import customer_profile
from crm_analytics.warehouse import Warehouse
from tests.profiles.conftest import LinkedDemo


@pytest.fixture(scope="module")
def index(linked_demo: LinkedDemo) -> ProfileIndex:
    return ProfileIndex.load(linked_demo.warehouse)


@pytest.fixture(scope="module")
def billing_guest(linked_demo: LinkedDemo) -> pd.Series:
    """A billing record (every guest has one) with its unified customer id."""
    return linked_demo.warehouse.fetch(
        "SELECT r.*, l.customer_id AS unified FROM customer_records r JOIN customer_links l "
        "ON r.source = l.source AND r.source_customer_id = l.source_customer_id "
        "WHERE r.source = 'billing' AND r.birth_date IS NULL ORDER BY r.source_customer_id LIMIT 1"
    ).iloc[0]


def test_lookup_by_email_or_phone_in_any_format(index: ProfileIndex, billing_guest: pd.Series) -> None:
    for details in (
        {"email": f"  {billing_guest['email'].upper()} "},
        {"phone": billing_guest["phone"]},
        {
            "phone": " ".join(
                billing_guest["phone"][i : i + 3] for i in range(0, len(billing_guest["phone"]), 3)
            )
        },
    ):
        matches = index.lookup(details)
        assert [m.customer_id for m in matches] == [billing_guest["unified"]], details
        assert matches[0].confidence == 1.0


def test_lookup_by_name_and_another_detail_scores_with_the_model(
    index: ProfileIndex, billing_guest: pd.Series
) -> None:
    name = {"first_name": billing_guest["first_name"], "last_name": billing_guest["last_name"]}
    match = index.lookup(name | {"postcode": billing_guest["postcode"].lower().replace(" ", "")})[0]
    assert match.customer_id == billing_guest["unified"]
    assert match.matched_by == "name"
    assert 0.9 <= match.confidence < 1.0


def test_a_typo_in_the_name_lowers_the_confidence_rather_than_failing(
    linked_demo: LinkedDemo, billing_guest: pd.Series
) -> None:
    every = ProfileIndex.load(linked_demo.warehouse, min_confidence=0.0)
    exact = {"first_name": billing_guest["first_name"], "last_name": billing_guest["last_name"]}
    typo = exact | {"first_name": billing_guest["first_name"][:-1]}
    detail = {"postcode": billing_guest["postcode"], "city": billing_guest["city"]}
    typo_match, exact_match = every.lookup(typo | detail)[0], every.lookup(exact | detail)[0]
    assert typo_match.customer_id == exact_match.customer_id == billing_guest["unified"]
    assert typo_match.confidence < exact_match.confidence


def test_lookup_needs_enough_details(index: ProfileIndex) -> None:
    with pytest.raises(ValueError, match="details: give an e-mail, a phone, or first_name and last_name"):
        index.lookup({"first_name": "Anna", "last_name": "Smith"})
    with pytest.raises(ValueError, match="shoe_size: not a lookup detail"):
        index.lookup({"email": "a@example.com", "shoe_size": "42"})
    assert index.lookup({"email": "nobody@nowhere.example"}) == []


def test_lookup_before_any_build_says_how_to_build(tmp_path: Path) -> None:
    with (
        Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse,
        pytest.raises(LookupError, match="crm profiles build"),
    ):
        ProfileIndex.load(warehouse)


def test_show_gives_provenance_facts_records_and_one_history(linked_demo: LinkedDemo) -> None:
    warehouse = linked_demo.warehouse
    allergic = warehouse.fetch(
        "SELECT customer_id FROM customer_service_facts WHERE fact = 'allergy' ORDER BY customer_id LIMIT 1"
    )["customer_id"][0]
    profile = customer_profile(warehouse, allergic)
    assert profile["fields"]["address"]["source"] in ("billing", "crm", "booking")
    assert any(f["fact"] == "allergy" and f["source"] == "crm" for f in profile["service_facts"])
    assert {r["source"] for r in profile["records"]} >= {"crm", "billing"}
    assert profile["history"]["purchases"] >= 1
    with pytest.raises(LookupError, match="customer_id: no profile 'U0000'"):
        customer_profile(warehouse, "U0000")
