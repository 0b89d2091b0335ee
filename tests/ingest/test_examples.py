"""The README's example files are valid: each one ingests with nothing quarantined."""

from __future__ import annotations

from pathlib import Path

from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.ingest.readers import expand_paths
from crm_analytics.ingest.warehouse import Warehouse
from crm_analytics.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_every_example_file_ingests_cleanly(warehouse: Warehouse, settings: Settings) -> None:
    files = expand_paths([EXAMPLES])
    assert {f.name for f in files} == {
        "transactions.csv",
        "transaction_items.csv",
        "customers_crm.csv",
        "offers.csv",
        "offer_log.csv",
    }
    for path in files:
        report = ingest_file(warehouse, path, settings)
        assert (report.rows_rejected, report.rows_new) == (0, report.rows_read), (
            path.name,
            report.rejections_by_reason,
        )


def test_a_table_from_an_older_contract_gains_the_new_optional_column(
    warehouse: Warehouse, settings: Settings
) -> None:
    """offers gained ``unit``: a warehouse made before that still takes the new example file."""
    with warehouse.transaction() as execute:
        execute('DROP TABLE "offers"')
        execute('CREATE TABLE "offers" ("offer_id" TEXT PRIMARY KEY, "name" TEXT, "category" TEXT)')
    warehouse.create_tables()
    report = ingest_file(warehouse, EXAMPLES / "offers.csv", settings)
    assert report.rows_rejected == 0
    assert set(warehouse.fetch('SELECT DISTINCT "unit" FROM offers')["unit"]) <= {
        "stay",
        "night",
        "guest",
        "guest_night",
    }
