"""The README's example files are valid: each one ingests with nothing quarantined."""

from __future__ import annotations

from pathlib import Path

from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.ingest.readers import expand_paths
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_every_example_file_ingests_cleanly(warehouse: Warehouse, settings: Settings) -> None:
    files = expand_paths([EXAMPLES])
    assert {f.name for f in files} == {
        "transactions.csv",
        "transaction_items.csv",
        "customers_crm.csv",
        "offers.csv",
        "hotels.csv",
        "offer_log.csv",
    }
    for path in files:
        report = ingest_file(warehouse, path, settings)
        assert (report.rows_rejected, report.rows_new) == (0, report.rows_read), (
            path.name,
            report.rejections_by_reason,
        )
