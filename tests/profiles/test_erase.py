"""Erasure: one person leaves no trace in any table, others stay, and a re-ingest brings nothing back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from crm_analytics.datasets.demo import DemoConfig, DemoData, generate_demo, write_demo
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.features.store import write_features
from crm_analytics.ingest.pipeline import BatchReport, ingest_file
from crm_analytics.ingest.readers import expand_paths
from crm_analytics.ingest.suppression import TABLE as SUPPRESSIONS
from crm_analytics.models.segments.membership import write_membership
from crm_analytics.profiles.build import build_profiles
from crm_analytics.profiles.erase import erase_customer
from crm_analytics.profiles.records import normalise_phone
from crm_analytics.profiles.tables import LINK_COLUMNS, LINKS
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse, create_table_sql
from tests.ingest.helpers import GOOD_TRANSACTION, write_csv

AS_OF = date(2025, 6, 30)
ABOUT_NOBODY = ("offers", "ingest_batches", "feature_builds", "profile_linkage_model")


@dataclass(frozen=True)
class Person:
    """One demo guest: the raw rows that are theirs and every value that identifies them."""

    accounts: frozenset[tuple[str, str]]
    transactions: frozenset[str]
    rows: dict[str, int]  # raw rows per table in the demo files
    needles: tuple[str, ...]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoData]:
    folder = tmp_path_factory.mktemp("erase_demo") / "raw"
    data = generate_demo(DemoConfig(customers=300, seed=11))
    write_demo(data, folder)
    return folder, data


def pick_person(data: DemoData) -> Person:
    """A guest known to all three systems, with stays before the cutoff, offers shown, and e-mails and
    phones no other guest has (so a trace of them can only be theirs)."""
    identities = data.truth["identities"]
    records = pd.concat(data.customers.values(), ignore_index=True).merge(
        identities, on=["source", "source_customer_id"]
    )
    keys = [normalise_phone(p, c) for p, c in zip(records["phone"], records["country"], strict=True)]
    records = records.assign(phone_key=keys)
    transactions, offers = data.transactions, data.offer_log
    for person_id, own in records.groupby("person_id", sort=True):
        others = records[records["person_id"] != person_id]
        accounts = frozenset(zip(own["source"], own["source_customer_id"], strict=True))
        booking = {a for s, a in accounts if s == "booking"}
        theirs = transactions[transactions["customer_id"].isin(booking)]
        if (
            own["source"].nunique() < 3
            or own["email"].isna().any()
            or own["email"].str.lower().isin(others["email"].str.lower()).any()
            or own["phone_key"].isin(others["phone_key"].dropna()).any()
            or not (theirs["timestamp"] < pd.Timestamp(AS_OF)).any()
            or not offers["customer_id"].isin(booking).any()
        ):
            continue
        ids = set(theirs["transaction_id"])
        needles = {a for _, a in accounts} | ids | {"X1"}
        needles |= set(own["email"]) | set(own["email"].str.lower()) | set(own["phone"].dropna())
        needles |= set(own["phone_key"].dropna())
        needles |= set(offers.loc[offers["customer_id"].isin(booking), "event_id"])
        return Person(
            accounts=accounts,
            transactions=frozenset(ids),
            rows={
                "customer_records": len(own),
                "transactions": len(theirs),
                "transaction_items": int(data.transaction_items["transaction_id"].isin(ids).sum()),
                "offer_log": int(offers["customer_id"].isin(booking).sum()),
            },
            needles=tuple(sorted(needles)),
        )
    raise AssertionError("the demo has no suitable guest; change the seed")


def bad_rows(folder: Path, person: Person) -> list[Path]:
    """Quarantined rows of the person: a customer record, a transaction, and (last) a customer record
    without an account id, which only its e-mail ties to them."""
    folder.mkdir(exist_ok=True)
    source, account = sorted(a for a in person.accounts if a[0] == "booking")[0]
    email = next(n for n in person.needles if "@" in n)
    record = {"source": source, "source_customer_id": account, "email": email, "updated_at": "yesterday"}
    transaction = GOOD_TRANSACTION | {"transaction_id": "X1", "customer_id": account, "source": source}
    return [
        write_csv(folder / "customer_records_bad.csv", [record]),
        write_csv(folder / "transactions_bad.csv", [transaction | {"amount": "abc"}]),
        write_csv(
            folder / "customer_records_no_id.csv",
            [record | {"source_customer_id": "", "updated_at": "2024-01-01"}],
        ),
    ]


def ingest(warehouse: Warehouse, settings: Settings, paths: list[Path]) -> list[BatchReport]:
    tolerant = settings.model_copy(update={"ingest_max_bad_ratio": 1.0})
    return [ingest_file(warehouse, path, tolerant) for path in paths]


def table_counts(warehouse: Warehouse) -> dict[str, int]:
    return {t: warehouse.count(t) for t in columns_by_table(warehouse)}


def columns_by_table(warehouse: Warehouse) -> dict[str, list[str]]:
    schema = "main" if warehouse.backend == "duckdb" else "public"
    listing = warehouse.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' ORDER BY table_name, ordinal_position"
    )
    return {str(t): list(g["column_name"]) for t, g in listing.groupby("table_name")}


def traces(warehouse: Warehouse, needles: tuple[str, ...]) -> dict[str, list[str]]:
    """Every table and column whose text contains one of ``needles`` anywhere."""
    pattern = "|".join(re.escape(n) for n in needles)
    found = {}
    for table, columns in columns_by_table(warehouse).items():
        as_text = ", ".join(f'CAST("{c}" AS TEXT) AS "{c}"' for c in columns)
        frame = warehouse.fetch(f'SELECT {as_text} FROM "{table}"')
        hits = [c for c in columns if frame[c].dropna().astype(str).str.contains(pattern).any()]
        if hits:
            found[table] = hits
    return found


@pytest.mark.slow  # a whole demo chain: in `make test`, not in the fast loop
def test_erased_person_leaves_no_trace_and_stays_out(
    warehouse: Warehouse, settings: Settings, demo: tuple[Path, DemoData], tmp_path: Path
) -> None:
    folder, data = demo
    person = pick_person(data)
    *originals, no_id = expand_paths([folder]) + bad_rows(tmp_path / "bad", person)
    reports = ingest(warehouse, settings, [*originals, no_id])
    assert sum(r.rows_rejected for r in reports) == 3
    build_profiles(warehouse, settings, log_run=False)
    links = warehouse.fetch(f'SELECT * FROM "{LINKS}"')
    mine = links.set_index(["source", "source_customer_id"]).loc[sorted(person.accounts), "customer_id"]
    assert mine.nunique() == 1, "profiles should link the picked guest's records into one customer"
    unified = str(mine.iloc[0])
    assert set(links.loc[links["customer_id"] == unified, "source_customer_id"]) == {
        a for _, a in person.accounts
    }
    config = FeatureConfig(as_of=AS_OF).resolved(warehouse.ibis)
    features = feature_table(warehouse.ibis, config).execute()
    write_features(warehouse, features, config)
    members = features[["customer_id"]].assign(segment="loyal", clv=100.0, churn_probability=0.1)
    write_membership(warehouse, "rfm", members, "crm-segments-rfm/1", AS_OF)
    needles = (*person.needles, unified)
    expected = {"customer_records", "transactions", "transaction_items", "offer_log", "quarantine"}
    expected |= {"customer_links", "customer_profiles", "profile_records", "features", "segment_membership"}
    assert expected <= set(traces(warehouse, needles)), "the search must see the person before erasure"
    before = table_counts(warehouse)

    report = erase_customer(warehouse, unified, settings)

    assert traces(warehouse, needles) == {}
    after = table_counts(warehouse)
    dropped = {t: before.get(t, 0) - n for t, n in after.items() if before.get(t, 0) != n}
    recorded = report.suppressions + 1  # and the key check
    assert dropped == {t: n for t, n in report.rows_deleted.items() if n} | {SUPPRESSIONS: -recorded}
    assert {t: dropped[t] for t in person.rows} == person.rows
    assert dropped["quarantine"] == 3
    assert (dropped["features"], dropped["segment_membership"], dropped["customer_profiles"]) == (1, 1, 1)
    assert dropped["customer_links"] == dropped["profile_records"] == len(person.accounts)
    assert not set(dropped) & set(ABOUT_NOBODY)
    assert (report.accounts, report.transactions) == (len(person.accounts), len(person.transactions))
    assert report.suppressions == len(person.accounts) + len(person.transactions)
    assert not re.search("|".join(map(re.escape, person.needles)), str(report.as_dict()))

    with pytest.raises(LookupError, match=f"customer_id: no customer {unified} in the warehouse"):
        erase_customer(warehouse, unified, settings)

    # a row without an account id cannot be suppressed by id, so only its deletion is tested
    again = ingest(warehouse, settings, originals)
    assert sum(r.rows_new for r in again) == 0
    suppressed: dict[str, int] = {}
    for r in again:
        if r.rows_suppressed:
            suppressed[r.table] = suppressed.get(r.table, 0) + r.rows_suppressed
    assert suppressed == {t: n + (t in ("customer_records", "transactions")) for t, n in person.rows.items()}
    assert table_counts(warehouse) == after | {"ingest_batches": after["ingest_batches"] + len(originals)}
    assert traces(warehouse, needles) == {}


def write_links(warehouse: Warehouse, links: list[tuple[str, str, str]]) -> None:
    with warehouse.transaction() as execute:
        execute(create_table_sql(LINKS, LINK_COLUMNS, ("source", "source_customer_id")))
    frame = pd.DataFrame(links, columns=["source", "source_customer_id", "customer_id"])
    warehouse.load_frame(LINKS, frame)


def small_warehouse(warehouse: Warehouse, settings: Settings, folder: Path) -> None:
    """Account C1 (crm) and G1 (shop: two purchases, two offers, one logged without the account) of one
    person; G2 (shop) of another."""
    records = [
        {"source": s, "source_customer_id": c, "email": f"{c}@example.org", "updated_at": "2024-01-01"}
        for s, c in (("crm", "C1"), ("shop", "G1"), ("shop", "G2"))
    ]
    transactions = [
        GOOD_TRANSACTION | {"transaction_id": t, "customer_id": c}
        for t, c in (("T1", "G1"), ("T2", "G1"), ("T3", "G2"))
    ]
    offers = [
        {"event_id": e, "customer_id": c, "transaction_id": t, "source": "shop", "offer_id": "O1"}
        | {"shown_at": "2024-03-01T10:00:00", "propensity": "0.5", "accepted": "", "responded_at": ""}
        for e, c, t in (("E1", "G1", "T1"), ("E2", "", "T2"), ("E3", "G2", "T3"))
    ]
    files = {"customer_records.csv": records, "transactions.csv": transactions, "offer_log.csv": offers}
    reports = ingest(warehouse, settings, [write_csv(folder / n, rows) for n, rows in files.items()])
    assert [r.rows_new for r in reports] == [3, 3, 3]


def remaining(warehouse: Warehouse) -> tuple[list[str], ...]:
    """The ids left in customer_records, transactions and offer_log."""
    return tuple(
        warehouse.fetch(f'SELECT "{column}" FROM "{table}" ORDER BY 1')[column].tolist()
        for table, column in (
            ("customer_records", "source_customer_id"),
            ("transactions", "transaction_id"),
            ("offer_log", "event_id"),
        )
    )


def test_an_account_id_without_profiles_erases_that_account_in_every_source(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    small_warehouse(warehouse, settings, tmp_path)

    report = erase_customer(warehouse, "G1", settings)

    assert remaining(warehouse) == (["C1", "G2"], ["T3"], ["E3"])
    assert (report.accounts, report.transactions, report.suppressions) == (1, 2, 3)
    with pytest.raises(LookupError, match="customer_id: no customer G1 in the warehouse"):
        erase_customer(warehouse, "G1", settings)


def test_a_linked_account_id_erases_its_whole_unified_customer(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    small_warehouse(warehouse, settings, tmp_path)
    write_links(warehouse, [("crm", "C1", "U1"), ("shop", "G1", "U1"), ("shop", "G2", "U2")])

    report = erase_customer(warehouse, "G1", settings)

    assert remaining(warehouse) == (["G2"], ["T3"], ["E3"])
    assert warehouse.fetch(f'SELECT customer_id FROM "{LINKS}"')["customer_id"].tolist() == ["U2"]
    assert (report.accounts, report.rows_deleted[LINKS]) == (2, 2)


def test_unknown_customer_is_a_lookup_error(warehouse: Warehouse, settings: Settings) -> None:
    with pytest.raises(LookupError, match="customer_id: no customer NOPE in the warehouse"):
        erase_customer(warehouse, "NOPE", settings)
    assert warehouse.count(SUPPRESSIONS) == 0


def test_an_id_left_only_in_derived_tables_is_still_erased(warehouse: Warehouse, settings: Settings) -> None:
    members = pd.DataFrame(
        {"customer_id": ["Z9", "Z8"], "segment": "loyal", "clv": 1.0, "churn_probability": 0.1}
    )
    write_membership(warehouse, "rfm", members, "crm-segments-rfm/1", AS_OF)

    report = erase_customer(warehouse, "Z9", settings)

    assert (report.rows_deleted["segment_membership"], report.accounts, report.suppressions) == (1, 0, 0)
    assert warehouse.fetch("SELECT customer_id FROM segment_membership")["customer_id"].tolist() == ["Z8"]
