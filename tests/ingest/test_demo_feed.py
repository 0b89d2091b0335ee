"""The demo generator as a daily feed: windows of one world, and shifts planted from a date on."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_analytics.cli import app
from crm_analytics.datasets.demo import DemoConfig, DemoData, Shift, generate_demo, parse_shift, window
from crm_analytics.datasets.demo.shifts import PRICE_FACTOR, SHIFT_KINDS
from crm_analytics.errors import InvalidInputError
from crm_analytics.jobs.data import demo_data
from crm_analytics.profiles.quality import pairwise_quality
from tests.conftest import project_env

CONFIG = DemoConfig(customers=1_500, seed=5)
SHIFT_DAY = date(2025, 3, 1)
CUTS = [date(2024, 12, 31), date(2025, 6, 30), date(2025, 12, 30), date(2025, 12, 31)]


def _frames(d: DemoData) -> dict[str, pd.DataFrame]:
    return {
        "transactions": d.transactions,
        "transaction_items": d.transaction_items,
        "offer_log": d.offer_log,
        **{f"customers_{k}": v for k, v in d.customers.items()},
    }


def _stamp(name: str, frame: pd.DataFrame) -> pd.Series:
    """When a row happened, as windows date it."""
    column = {"transactions": "timestamp", "offer_log": "responded_at"}.get(name, "updated_at")
    return frame[column]


@pytest.fixture(scope="module")
def full() -> DemoData:
    return generate_demo(CONFIG)


@pytest.fixture(scope="module")
def windows(full: DemoData) -> list[DemoData]:
    """History up to the first cut, then one window per later cut."""
    starts = [None, *(cut + timedelta(days=1) for cut in CUTS[:-1])]
    return [window(full, CONFIG, start, until) for start, until in zip(starts, CUTS, strict=True)]


def test_parse_shift_reads_date_and_kind() -> None:
    assert parse_shift("2025-12-15:price") == Shift(date(2025, 12, 15), "price")
    assert parse_shift(" 2025-01-02:churn ") == Shift(date(2025, 1, 2), "churn")
    with pytest.raises(ValueError, match="expected DATE:KIND"):
        parse_shift("2025-12-15")
    with pytest.raises(ValueError, match="expected a date as YYYY-MM-DD before ':', got '2025-13-15'"):
        parse_shift("2025-13-15:price")
    with pytest.raises(ValueError, match="unknown kind 'prices'; expected one of price, channel, churn"):
        parse_shift("2025-12-15:prices")


def test_windows_partition_the_full_run(full: DemoData, windows: list[DemoData]) -> None:
    for name, frame in _frames(full).items():
        union = pd.concat([_frames(w)[name] for w in windows], ignore_index=True)
        if name.startswith("customers"):  # records in record order, versions spread over windows
            union = union.sort_values(["source_customer_id", "updated_at"], ignore_index=True)
            frame = frame.sort_values(["source_customer_id", "updated_at"], ignore_index=True)
        pd.testing.assert_frame_equal(union, frame, obj=name)
    for w in windows:
        pd.testing.assert_frame_equal(w.offers, full.offers)  # the catalogue comes with every window


def test_nothing_in_a_window_is_dated_outside_it(windows: list[DemoData]) -> None:
    starts = [CONFIG.start, *(cut + timedelta(days=1) for cut in CUTS[:-1])]
    for start, until, w in zip(starts, CUTS, windows, strict=True):
        low, high = pd.Timestamp(start), pd.Timestamp(until + timedelta(days=1))
        for name, frame in _frames(w).items():
            assert len(frame), name
            if name == "transaction_items":  # dated by their transaction (below)
                continue
            stamp = _stamp(name, frame)
            assert ((stamp >= low) & (stamp < high)).all(), name
        assert (w.offer_log["shown_at"] < high).all()
        assert set(w.transaction_items["transaction_id"]) <= set(w.transactions["transaction_id"])
    last_day = windows[-1]
    assert set(last_day.transaction_items["transaction_id"]) == set(
        last_day.transactions.loc[last_day.transactions["type"] == "purchase", "transaction_id"]
    )


def test_record_updates_arrive_as_new_versions_in_their_window(
    full: DemoData, windows: list[DemoData]
) -> None:
    history, later = windows[0], pd.concat([w.customers["billing"] for w in windows[1:]])
    moved = later.merge(history.customers["billing"], on="source_customer_id", suffixes=("", "_before"))
    assert len(moved) > 0
    assert (moved["updated_at"] > moved["updated_at_before"]).all()
    assert (
        (moved["street"] != moved["street_before"]) | (moved["postcode"] != moved["postcode_before"])
    ).any()
    # the profiles build takes the latest version of a record: the one of the later window
    from crm_analytics.profiles.records import latest_records

    latest = latest_records(pd.concat([history.customers["billing"], later], ignore_index=True))
    expected = full.customers["billing"].drop_duplicates("source_customer_id", keep="last")
    merged = latest.merge(expected, on="source_customer_id", suffixes=("", "_full"))
    assert len(merged) == len(expected)
    assert (merged["updated_at"] == merged["updated_at_full"]).all()
    assert (merged["street"] == merged["street_full"]).all()


def test_truth_covers_what_was_emitted_up_to_until(full: DemoData, windows: list[DemoData]) -> None:
    history = windows[0]
    records = pd.concat(history.customers.values())
    keys = set(zip(records["source"], records["source_customer_id"], strict=True))
    identities = history.truth["identities"]
    assert set(zip(identities["source"], identities["source_customer_id"], strict=True)) == keys
    assert len(identities) < len(full.truth["identities"])
    cut = pd.Timestamp(CUTS[0] + timedelta(days=1))
    assert (history.truth["guests"]["first_stay_at"] < cut).all()
    assert set(history.truth["offer_acceptance"]["event_id"]) == set(history.offer_log["event_id"])
    assert set(history.truth["offer_options"]["event_id"]) <= set(history.offer_log["event_id"])
    # the linkage quality of a warehouse holding the history is measured on the history's truth
    truth = identities.assign(key=identities["source"] + ":" + identities["source_customer_id"])
    perfect = pairwise_quality(truth.set_index("key")["person_id"], truth.set_index("key")["person_id"])
    assert perfect.f1 == 1.0
    assert perfect.records == len(keys)


def test_shifts_change_only_rows_from_their_date() -> None:
    base = generate_demo(CONFIG)
    shifted = {
        kind: generate_demo(
            DemoConfig(customers=CONFIG.customers, seed=CONFIG.seed, shifts=(Shift(SHIFT_DAY, kind),))
        )
        for kind in ("price", "channel", "churn")
    }
    before = SHIFT_DAY - timedelta(days=1)
    for kind, data in shifted.items():
        assert data.shifts == (Shift(SHIFT_DAY, kind),)
        for name, frame in _frames(window(base, CONFIG, None, before)).items():
            pd.testing.assert_frame_equal(_frames(window(data, CONFIG, None, before))[name], frame, obj=name)
        pd.testing.assert_frame_equal(data.customers["crm"], base.customers["crm"])
    since = pd.Timestamp(SHIFT_DAY)

    def rooms(d: DemoData) -> pd.DataFrame:
        items = d.transaction_items[d.transaction_items["category"] == "room"]
        booked = d.transactions.set_index("transaction_id")["timestamp"]
        return items.assign(booked=items["transaction_id"].map(booked).to_numpy()).set_index("transaction_id")

    old, new = rooms(base), rooms(shifted["price"])
    assert (old.index == new.index).all()
    after = (old["booked"] >= since).to_numpy()
    assert after.sum() > 500
    assert (new.loc[~after, "unit_price"] == old.loc[~after, "unit_price"]).all()
    ratio = new.loc[after, "unit_price"] / old.loc[after, "unit_price"]
    assert ((ratio - PRICE_FACTOR).abs() < 0.01).all()

    tx, moved = base.transactions, shifted["channel"].transactions
    # a booking's channel: refunds and cancellations dated later keep the channel of their booking
    late = ((tx["timestamp"] >= since) & (tx["type"] == "purchase")).to_numpy()
    assert (tx.loc[late, "channel"] == "direct").sum() > 100
    assert not (moved.loc[late, "channel"] == "direct").any()
    expected = tx.loc[late, "channel"].replace("direct", "ota")
    assert (moved.loc[late, "channel"] == expected).all()

    churned = shifted["churn"].transactions
    assert set(churned["transaction_id"]) < set(tx["transaction_id"])  # only bookings left out
    kept = tx.set_index("transaction_id").loc[churned["transaction_id"]].reset_index()
    pd.testing.assert_frame_equal(kept, churned)
    stays = {name: d.truth["guests"]["n_stays"] for name, d in (("base", base), ("churn", shifted["churn"]))}
    assert (stays["churn"] <= stays["base"]).all()
    cancelled = churned.loc[churned["type"] == "cancellation", "reference_id"]
    made = (churned["type"] == "purchase") & ~churned["transaction_id"].isin(cancelled)
    assert made.sum() == stays["churn"].sum()  # the truth counts the stays the shifted world has
    late_purchases = [(t["timestamp"] >= since) & (t["type"] == "purchase") for t in (tx, churned)]
    assert late_purchases[1].sum() < 0.65 * late_purchases[0].sum()  # 0.48-0.53 at seeds 5-7
    assert (shifted["churn"].truth["guests"]["alive_at_end"] <= base.truth["guests"]["alive_at_end"]).all()


def test_demo_data_writes_a_window_with_its_shifts(tmp_path: Path) -> None:
    report = demo_data(
        tmp_path / "w",
        300,
        3,
        "csv",
        start=date(2025, 12, 1),
        until=date(2025, 12, 10),
        shifts=["2025-12-05:churn", Shift(date(2025, 12, 20), "price"), "2025-12-01:channel"],
    )
    assert report.details["from"] == "2025-12-01"
    assert [s["kind"] for s in report.details["shifts"]] == ["channel", "churn", "price"]
    written = json.loads((tmp_path / "w" / "truth" / "shifts.json").read_text())
    assert written == [  # the price shift comes after the window
        {"date": "2025-12-01", "kind": "channel", "description": SHIFT_KINDS["channel"]},
        {"date": "2025-12-05", "kind": "churn", "description": SHIFT_KINDS["churn"]},
    ]
    tx = pd.read_csv(tmp_path / "w" / "transactions.csv", parse_dates=["timestamp"])
    assert tx["timestamp"].between("2025-12-01", "2025-12-10 23:59:59").all()
    assert "direct" not in set(tx["channel"])
    again = tmp_path / "again"
    shifts = ["2025-12-20:price", "2025-12-05:churn", "2025-12-01:channel"]  # order does not matter
    demo_data(again, 300, 3, "csv", start=date(2025, 12, 1), until=date(2025, 12, 10), shifts=shifts)
    for path in (tmp_path / "w").rglob("*.*"):
        assert path.read_bytes() == (again / path.relative_to(tmp_path / "w")).read_bytes(), path.name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shifts": ["2025-12-15"]}, "--shift: expected DATE:KIND"),
        ({"shifts": ["2025-12-32:price"]}, "--shift: expected a date as YYYY-MM-DD"),
        ({"shifts": ["2025-12-15:discount"]}, "--shift: unknown kind 'discount'"),
        ({"shifts": ["2026-01-01:price"]}, "--shift: shift dates must lie within 2023-01-01 to 2025-12-31"),
        (
            {"start": date(2025, 12, 2), "until": date(2025, 12, 1)},
            "--from: 2025-12-02 is after --until 2025-12-01",
        ),
        ({"until": date(2026, 1, 1)}, "--until: 2026-01-01 is outside the demo's dates"),
        ({"start": date(2022, 12, 31)}, "--from: 2022-12-31 is outside the demo's dates"),
    ],
)
def test_bad_windows_and_shifts_are_invalid_input(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        demo_data(tmp_path, 100, 1, **kwargs)
    assert not tmp_path.joinpath("transactions.parquet").exists()


def test_crm_data_demo_refuses_a_bad_shift_in_one_line(tmp_path: Path) -> None:
    crm = Path(sys.executable).parent / "crm"  # the console script itself
    env = {**project_env(tmp_path), "PATH": str(crm.parent), "COLUMNS": "200"}
    result = subprocess.run(
        [
            str(crm),
            "data",
            "demo",
            "--out",
            "d",
            "--shift",
            "2025-12-15:price",
            "--shift",
            "2025-12-15:bogus",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["--shift: unknown kind 'bogus'; expected one of price, channel, churn"]
    assert not (tmp_path / "d").exists()


def test_crm_data_demo_window_options() -> None:
    args = ["data", "demo", "--out", "d", "--customers", "50", "--json"]
    window_args = ["--from", "2025-12-01", "--until", "2025-12-31", "--shift", "2025-12-15:price"]
    ok = CliRunner().invoke(app, [*args, *window_args])
    assert ok.exit_code == 0, ok.output
    details = json.loads(ok.stdout)["details"]
    assert (details["from"], details["until"]) == ("2025-12-01", "2025-12-31")
    assert [s["kind"] for s in details["shifts"]] == ["price"]
    assert json.loads(Path("d/truth/shifts.json").read_text())[0]["date"] == "2025-12-15"
    late = CliRunner().invoke(app, [*args, "--from", "2025-12-31", "--until", "2025-12-01"])
    assert late.exit_code == 2
    assert "--from: 2025-12-31 is after --until 2025-12-01" in late.stderr
    assert CliRunner().invoke(app, [*args, "--until", "2025-02-30"]).exit_code == 2
    assert "--from" in CliRunner().invoke(app, ["data", "demo", "--help"]).stdout
