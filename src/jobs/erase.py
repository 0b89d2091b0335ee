"""Erase a person everywhere: the warehouse (raw records, quarantine, profile, features, scores, with a
suppression so a later ingest drops their source rows), the serving store, and the API's access log
(their ids there become tombstones: the log keeps that a read happened, not whose)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_analytics.jobs.common import open_store, open_warehouse
from crm_analytics.profiles.erase import ErasureReport, erase_customer
from crm_analytics.settings import Settings
from crm_analytics.store.access_log import erase_from_log
from crm_analytics.warehouse import publish_read_copy


@dataclass(frozen=True)
class EraseReport:
    """The warehouse's erasure report, the serving store's deleted rows and the access log's tombstoned
    ids (counts only)."""

    warehouse: ErasureReport
    serving_rows_deleted: int
    access_log_ids_erased: int = 0

    def as_dict(self) -> dict[str, Any]:
        return self.warehouse.as_dict() | {
            "serving_rows_deleted": self.serving_rows_deleted,
            "access_log_ids_erased": self.access_log_ids_erased,
        }


def erase(settings: Settings, customer_id: str) -> EraseReport:
    """Erase ``customer_id`` (a unified customer id or a source account id); a LookupError when nothing
    is known about it (also after an erasure)."""
    with open_warehouse(settings) as warehouse:
        report = erase_customer(warehouse, customer_id, settings)
        publish_read_copy(warehouse, settings)  # the person leaves what readers open too
    # the ids the warehouse resolved for the person (the id given, its unified customer, its accounts)
    served = open_store(settings).erase(report.person_ids)
    return EraseReport(report, served, erase_from_log(settings.access_log, report.person_ids))
