"""``crm monitor``: the latest state of what watches the data and the models, and whether anything is in
breach (the CLI then exits 3). Today: data quality per refresh and source (``monitoring.data_quality``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_analytics.jobs.common import open_reader
from crm_analytics.monitoring import data_quality
from crm_analytics.settings import Settings


@dataclass(frozen=True)
class MonitorReport:
    """The latest data-quality checks and their breaches."""

    as_of: str | None
    checks: list[data_quality.QualityCheck]

    @property
    def breaches(self) -> list[data_quality.QualityCheck]:
        return [c for c in self.checks if c.breach]

    @property
    def status(self) -> str:
        if not self.checks:
            return "no data yet"
        return "breach" if self.breaches else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "data_quality": {
                "as_of": self.as_of,
                "checks": len(self.checks),
                "learning": sum(c.baseline is None for c in self.checks),
                "breaches": [c.as_dict() for c in self.breaches],
            },
        }


def monitor(settings: Settings) -> MonitorReport:
    """The checks of the latest refreshed day (read from the published copy, as the reading commands)."""
    with open_reader(settings) as warehouse:
        checks = data_quality.latest(warehouse)
    return MonitorReport(checks[0].as_of if checks else None, checks)
