"""Erase a person everywhere: the warehouse (raw records, quarantine, profile, features, scores, with a
suppression so a later ingest drops their source rows), the serving store (their decisions and feedback
too), the API's access log (their ids there become tombstones: the log keeps that a read happened, not
whose), and what killed runs left behind (staging tables, unswitched serving snapshots).

Deleting rows is not enough: databases keep a deleted row's bytes in free space. So the DuckDB
warehouse file is rewritten and its read copy republished from the rewrite (``warehouse.rewrite``), and
a SQLite serving store is vacuumed and its WAL truncated (``store.compaction``). On PostgreSQL the
deleted rows stay in the tables' pages until ``VACUUM FULL`` (an operator's step: docs/operations.md).

Everything happens while this job holds the warehouse (its writer lock), so no scoring run or ingest is
under way: their staging tables and snapshots found now are leftovers of killed runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_analytics.ingest.suppression import key_in_data_folder
from crm_analytics.jobs.common import open_store, open_warehouse
from crm_analytics.profiles.erase import ErasureReport, erase_customer
from crm_analytics.settings import Settings
from crm_analytics.store.access_log import erase_from_log
from crm_analytics.store.compaction import compact
from crm_analytics.warehouse.rewrite import rewrite_file
from crm_analytics.warehouse.staging import drop_staging_tables


@dataclass(frozen=True)
class EraseReport:
    """The warehouse's erasure report, the serving store's deleted rows, the access log's tombstoned
    ids (counts only), and what was rewritten so no bytes of the person remain."""

    warehouse: ErasureReport
    serving_rows_deleted: int
    access_log_ids_erased: int = 0
    staging_tables_dropped: int = 0  # killed runs' leftovers, in the warehouse
    serving_rows_discarded: int = 0  # rows of serving snapshots a killed scoring run never switched to
    warehouse_rewritten: bool = False  # the DuckDB file (and its read copy) rewritten without free blocks
    serving_store_compacted: bool | None = None  # SQLite: vacuumed, WAL truncated; None: PostgreSQL
    key_notice: str | None = None  # how to move an erasure key that still lives in the data folder

    def as_dict(self) -> dict[str, Any]:
        return self.warehouse.as_dict() | {
            "serving_rows_deleted": self.serving_rows_deleted,
            "access_log_ids_erased": self.access_log_ids_erased,
            "staging_tables_dropped": self.staging_tables_dropped,
            "serving_rows_discarded": self.serving_rows_discarded,
            "warehouse_rewritten": self.warehouse_rewritten,
            "serving_store_compacted": self.serving_store_compacted,
        }


def erase(settings: Settings, customer_id: str) -> EraseReport:
    """Erase ``customer_id`` (a unified customer id or a source account id); a LookupError when nothing
    is known about it (also after an erasure)."""
    with open_warehouse(settings) as warehouse:
        report = erase_customer(warehouse, customer_id, settings)
        staged = drop_staging_tables(warehouse)
        store = open_store(settings)
        discarded = store.discard_inactive()
        # the ids the warehouse resolved for the person (the id given, its unified customer, its accounts)
        served = store.erase(report.person_ids)
        compacted = compact(store.engine)
        store.engine.dispose()
        logged = erase_from_log(settings.access_log, report.person_ids)
        rewritten = rewrite_file(warehouse, settings)  # the person leaves what readers open too
    return EraseReport(
        report,
        served,
        logged,
        staging_tables_dropped=len(staged),
        serving_rows_discarded=discarded,
        warehouse_rewritten=rewritten is not None,
        serving_store_compacted=compacted,
        key_notice=key_in_data_folder(settings),
    )
