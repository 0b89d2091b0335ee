"""Stable customer ids, recorded merges and incremental builds, on a demo chain through real ingest."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.profiles import build as build_module
from crm_analytics.profiles.build import build_profiles
from crm_analytics.profiles.erase import erase_customer
from crm_analytics.profiles.ids import unified_id
from crm_analytics.profiles.tables import MERGES, REBUILT
from crm_analytics.settings import Settings, load_settings
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load
from tests.profiles.increment import split_day

LATER = pd.Timestamp("2026-01-02 09:00:00")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400-guest chain ingested and fully built once; each test works on a copy of the file."""
    folder = tmp_path_factory.mktemp("built")
    write_demo(generate_demo(DemoConfig(customers=400, seed=5)), folder / "raw")
    with Warehouse(f"duckdb:///{folder / 'w.duckdb'}") as warehouse:
        load(warehouse, folder / "raw")
        build_profiles(warehouse, load_settings(), log_run=False)
    return folder / "w.duckdb"


@pytest.fixture
def warehouse(built: Path, tmp_path: Path) -> Iterator[Warehouse]:
    shutil.copy(built, tmp_path / "w.duckdb")
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        yield wh


def add_records(
    warehouse: Warehouse, folder: Path, rows: list[dict[str, object]], settings: Settings | None = None
) -> None:
    """Ingest ``rows`` (customer records; ``updated_at`` defaults to LATER) through the pipeline, with
    ``settings`` (default: the environment's)."""
    frame = pd.DataFrame(rows)
    frame["updated_at"] = frame.get("updated_at", pd.Series(LATER, index=frame.index)).fillna(LATER)
    folder.mkdir(parents=True, exist_ok=True)
    for source, part in frame.groupby("source"):
        path = folder / f"customers_{source}.parquet"
        part.to_parquet(path, index=False)
        report = ingest_file(warehouse, path, settings or load_settings())
        assert report.rows_new == len(part), report.rejections_by_reason


def links(warehouse: Warehouse) -> pd.Series:
    """Record key -> customer id."""
    rows = warehouse.fetch("SELECT source, source_customer_id, customer_id FROM customer_links")
    return pd.Series(
        rows["customer_id"].to_numpy(), index=(rows["source"] + ":" + rows["source_customer_id"]).to_numpy()
    )


def raw_records(warehouse: Warehouse, customer_id: str) -> pd.DataFrame:
    return warehouse.fetch(
        "SELECT r.* FROM customer_records r JOIN customer_links l "
        "ON r.source = l.source AND r.source_customer_id = l.source_customer_id "
        f"WHERE l.customer_id = '{customer_id}' ORDER BY r.source, r.source_customer_id"
    )


def customer_with(warehouse: Warehouse, sql_filter: str, n: int = 1) -> list[str]:
    """Customers with at least ``n`` records whose records satisfy ``sql_filter`` (SQL on r.*)."""
    found = warehouse.fetch(
        "SELECT l.customer_id FROM customer_records r JOIN customer_links l "
        "ON r.source = l.source AND r.source_customer_id = l.source_customer_id "
        f"WHERE {sql_filter} GROUP BY l.customer_id HAVING COUNT(DISTINCT r.source_customer_id) >= {n} "
        "ORDER BY l.customer_id"
    )
    return list(found["customer_id"])


def snapshot(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    """Every profile table's rows, in a fixed order."""
    frames = {t: warehouse.fetch(f'SELECT * FROM "{t}"') for t in (*REBUILT, MERGES, "profile_linkage_model")}
    return {t: f.sort_values(list(f.columns)).reset_index(drop=True) for t, f in frames.items()}


@pytest.mark.parametrize("incremental", [True, False])
def test_a_record_with_a_smaller_key_joining_a_customer_keeps_its_id(
    warehouse: Warehouse, tmp_path: Path, settings: Settings, incremental: bool
) -> None:
    (x, *_) = customer_with(warehouse, "r.email IS NOT NULL", n=2)
    person = raw_records(warehouse, x).iloc[0]
    # "billing:A0" sorts before every demo key, so the hash of the smallest key would change
    add_records(
        warehouse,
        tmp_path / "day",
        [{"source": "billing", "source_customer_id": "A0", "email": person["email"], **_name(person)}],
    )
    build = build_profiles(warehouse, settings, log_run=False, incremental=incremental)
    after = links(warehouse)
    assert after["billing:A0"] == x != unified_id("billing:A0")
    assert build.incremental is incremental
    assert warehouse.count(MERGES) == 0
    profiles = warehouse.fetch("SELECT customer_id FROM customer_profiles")["customer_id"]
    assert (profiles == x).sum() == 1


def test_a_record_bridging_two_customers_merges_them_into_the_survivor(
    warehouse: Warehouse, tmp_path: Path, settings: Settings
) -> None:
    with_email = customer_with(warehouse, "r.email IS NOT NULL")
    with_phone = customer_with(warehouse, "r.phone IS NOT NULL")
    x = with_email[0]
    y = next(c for c in with_phone if c != x)
    before = links(warehouse)
    members = {c: set(before.index[before == c]) for c in (x, y)}
    email, phone = (
        raw_records(warehouse, x)["email"].dropna().iloc[0],
        raw_records(warehouse, y)["phone"].dropna().iloc[0],
    )
    bridge = {"source": "booking", "source_customer_id": "G-bridge", "email": email, "phone": phone}
    add_records(warehouse, tmp_path / "day", [bridge | _name(raw_records(warehouse, x).iloc[0])])

    build = build_profiles(warehouse, settings, log_run=False, incremental=True)

    sizes = {c: len(m) for c, m in members.items()}
    survivor = min((x, y), key=lambda c: (-sizes[c], c))  # more records, then the smaller id
    retired = y if survivor == x else x
    after = links(warehouse)
    assert set(after[list(members[x] | members[y] | {"booking:G-bridge"})]) == {survivor}
    merges = warehouse.fetch(f"SELECT from_id, into_id, reason FROM {MERGES}")
    assert merges.to_dict("records") == [{"from_id": retired, "into_id": survivor, "reason": "merge"}]
    assert build.merges == 1
    assert build.relinked_records == sizes[x] + sizes[y] + 1
    profiles = warehouse.fetch("SELECT customer_id FROM customer_profiles")["customer_id"]
    assert survivor in set(profiles)
    assert retired not in set(profiles)
    assert after.nunique() == before.nunique() - 1

    # (d) erasing the survivor removes the merge rows and rows still under the retired id
    warehouse.load_frame("customer_scores", pd.DataFrame({"customer_id": [retired], "as_of": [LATER]}))
    report = erase_customer(warehouse, survivor, settings)
    assert report.rows_deleted[MERGES] == 1
    assert warehouse.count(MERGES) == 0
    assert warehouse.count("customer_scores") == 0


def test_a_record_that_changes_beyond_recognition_splits_off_with_a_new_id(
    warehouse: Warehouse, tmp_path: Path, settings: Settings
) -> None:
    x = customer_with(warehouse, "TRUE", n=3)[0]
    first = raw_records(warehouse, x).iloc[0]
    stranger = {
        "source": first["source"],
        "source_customer_id": first["source_customer_id"],
        "first_name": "Zebulon",
        "last_name": "Quixwater",
        "email": "zq@nowhere.example",
        "phone": "+1 555 0100 999",
        "street": "1 Nowhere Lane",
        "city": "Elsewhere",
        "postcode": "ZZ1 1ZZ",
    }
    add_records(warehouse, tmp_path / "day", [stranger])

    build = build_profiles(warehouse, settings, log_run=False, incremental=True)

    after = links(warehouse)
    key = f"{first['source']}:{first['source_customer_id']}"
    assert after[key] != x
    assert (after == x).sum() >= 2  # the larger part keeps the id
    merges = warehouse.fetch(f"SELECT from_id, into_id, reason FROM {MERGES}")
    assert merges.to_dict("records") == [{"from_id": x, "into_id": after[key], "reason": "split"}]
    assert build.changed_records == 1


def test_an_incremental_build_with_nothing_new_changes_nothing(
    warehouse: Warehouse, tmp_path: Path, settings: Settings
) -> None:
    (x, *_) = customer_with(warehouse, "r.email IS NOT NULL")
    add_records(
        warehouse,
        tmp_path / "day",
        [{"source": "crm", "source_customer_id": "C-new", **_name(raw_records(warehouse, x).iloc[0])}],
    )
    build_profiles(warehouse, settings, log_run=False, incremental=True)
    before = snapshot(warehouse)

    again = build_profiles(warehouse, settings, log_run=False, incremental=True)

    assert (again.incremental, again.changed_records, again.relinked_records, again.merges) == (True, 0, 0, 0)
    after = snapshot(warehouse)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame, obj=table)


@pytest.mark.slow  # a whole demo chain: in `make test`, not in the fast loop
def test_incremental_equals_full_on_a_day_of_new_and_changed_records(
    tmp_path: Path, settings: Settings
) -> None:
    data = generate_demo(DemoConfig(customers=1_500, seed=8))
    write_demo(data, tmp_path / "raw")
    day = split_day(data.customers, data.truth["identities"], share=0.02, seed=3)
    day.write(tmp_path / "history", tmp_path / "day")
    truth = tmp_path / "raw" / "truth"
    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        load(warehouse, tmp_path / "history")
        build_profiles(warehouse, settings, log_run=False)
        load(warehouse, tmp_path / "day")
        incremental = build_profiles(warehouse, settings, truth_dir=truth, incremental=True)
        by_incremental = links(warehouse)
        full = build_profiles(warehouse, settings, truth_dir=truth, log_run=False)
        by_full = links(warehouse)

    assert incremental.incremental
    assert not full.incremental
    assert (full.changed_records, full.relinked_records) == (0, full.records)  # nothing new since
    # records, not rows: a held-back record comes with all its versions
    assert incremental.changed_records == sum(f["source_customer_id"].nunique() for f in day.day.values())
    assert 0 < incremental.relinked_records < incremental.records / 10
    pairs = pd.DataFrame({"incremental": by_incremental, "full": by_full.reindex(by_incremental.index)})
    assert len(by_incremental) == len(by_full)
    assert pairs.notna().all().all()
    assert pairs.groupby("incremental")["full"].nunique().max() == 1  # same partition ...
    assert pairs.groupby("full")["incremental"].nunique().max() == 1
    assert (pairs["incremental"] == pairs["full"]).all()  # ... and, ids being stable, the same ids
    assert incremental.quality is not None
    assert full.quality is not None
    assert incremental.quality.f1 >= 0.98
    assert incremental.quality.f1 == pytest.approx(full.quality.f1)
    assert incremental.customers == full.customers
    assert incremental.run_id


def _name(record: pd.Series) -> dict[str, object]:
    return {"first_name": record["first_name"], "last_name": record["last_name"]}


def test_records_linked_before_versions_were_stored_get_a_full_build_with_the_same_ids(
    warehouse: Warehouse, settings: Settings
) -> None:
    before = links(warehouse)
    with warehouse.transaction() as execute:
        execute("UPDATE profile_records SET versions = NULL")

    build = build_profiles(warehouse, settings, log_run=False, incremental=True)

    assert not build.incremental
    pd.testing.assert_series_equal(links(warehouse).sort_index(), before.sort_index())
    assert warehouse.fetch("SELECT COUNT(*) AS n FROM profile_records WHERE versions IS NULL")["n"][0] == 0


def test_a_build_on_a_clock_behind_the_last_build_still_stamps_later(
    warehouse: Warehouse, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring copies the personal rows of customers stamped no later than its snapshot's build
    (jobs/score_carry.py): a build on a host whose clock is behind must still stamp later."""
    (x, *_) = customer_with(warehouse, "r.email IS NOT NULL")
    before = warehouse.fetch("SELECT MAX(built_at) AS at FROM customer_profiles")["at"][0]
    first = raw_records(warehouse, x).iloc[0]
    late = {**_name(first), "source": "booking", "source_customer_id": "G-late", "email": first["email"]}
    add_records(warehouse, tmp_path / "day", [late])
    behind = pd.Timestamp(before).to_pydatetime() - timedelta(days=3)
    monkeypatch.setattr(build_module, "_now", lambda: behind)

    build_profiles(warehouse, settings, log_run=False, incremental=True)

    stamped = warehouse.fetch(f"SELECT built_at FROM customer_profiles WHERE customer_id = '{x}'")["built_at"]
    assert (stamped > before).all()
