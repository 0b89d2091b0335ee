"""A daily feed of the demo world lands in the warehouse exactly as the full run does."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from crm_analytics.datasets.demo import Shift
from crm_analytics.ingest.contracts import CONTRACTS
from crm_analytics.jobs.data import demo_data
from crm_analytics.jobs.ingest import ingest
from crm_analytics.profiles.quality import pairwise_quality, read_identities
from crm_analytics.settings import load_settings
from crm_analytics.warehouse import Warehouse

CUSTOMERS, SEED = 1_500, 5
SHIFTS = ("2025-11-15:price", "2025-11-15:churn", Shift(date(2025, 12, 20), "channel"))
# history, a month and a half holding the price and churn shifts, one day without CRM or billing
# updates (seed 5), and the rest of the year holding the channel shift
WINDOWS = [
    (None, date(2025, 10, 31)),
    (date(2025, 11, 1), date(2025, 12, 16)),
    (date(2025, 12, 17), date(2025, 12, 17)),
    (date(2025, 12, 18), date(2025, 12, 31)),
]


def _rows(url: str) -> dict[str, pd.DataFrame]:
    """Every contract table's rows (data columns only), sorted by the natural key."""
    with Warehouse(url) as warehouse:
        assert warehouse.count("quarantine") == 0
        tables = {}
        for table, contract in CONTRACTS.items():
            columns = ", ".join(f'"{c}"' for c in contract.columns)
            frame = warehouse.fetch(f'SELECT {columns} FROM "{table}"')
            tables[table] = frame.sort_values(list(contract.key), ignore_index=True)
        return tables


def test_windows_ingested_in_order_equal_the_full_run(tmp_path: Path) -> None:
    full_url = f"duckdb:///{tmp_path / 'full.duckdb'}"
    feed_url = f"duckdb:///{tmp_path / 'feed.duckdb'}"
    demo_data(tmp_path / "full", CUSTOMERS, SEED, shifts=SHIFTS)
    report = ingest(load_settings(warehouse_url=full_url), [tmp_path / "full"])
    assert report.accepted

    feed_settings = load_settings(warehouse_url=feed_url)
    empty = set()
    for i, (start, until) in enumerate(WINDOWS):
        folder = tmp_path / f"window-{i}"
        demo_data(folder, CUSTOMERS, SEED, start=start, until=until, shifts=SHIFTS)
        report = ingest(feed_settings, [folder])
        assert report.accepted, report.batches
        empty |= {(i, b["table"], Path(b["source_file"]).stem) for b in report.batches if b["rows_read"] == 0}
        assert report.totals["offers"]["rows_new"] == (12 if i == 0 else 0)  # the catalogue, once
        # the linkage quality can be measured on what the warehouse holds so far
        truth = read_identities(folder / "truth")
        with Warehouse(feed_url) as warehouse:
            held = warehouse.fetch("SELECT DISTINCT source, source_customer_id FROM customer_records")
        keys = pd.Index(held["source"] + ":" + held["source_customer_id"])
        assert set(keys) == set(truth.index)
        assert pairwise_quality(pd.Series(truth.loc[keys].to_numpy(), index=keys), truth).f1 == 1.0
    assert {(2, "customer_records", "customers_crm"), (2, "customer_records", "customers_billing")} <= empty

    full, feed = _rows(full_url), _rows(feed_url)
    for table, rows in full.items():
        assert len(rows) > 0, table
        pd.testing.assert_frame_equal(feed[table], rows, obj=table)
    # ingesting the last window again changes nothing
    again = ingest(feed_settings, [tmp_path / f"window-{len(WINDOWS) - 1}"])
    assert all(totals["rows_new"] == 0 for totals in again.totals.values())
