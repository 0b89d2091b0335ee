"""What the service serves now (``crm status``): the served snapshot's day and the model versions that
made it, the champions now (a champion moved since is rescored by the next refresh), and the recent
refreshes with their outcome. Reads the serving store and MLflow only, so it answers while a refresh
holds the warehouse."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from crm_analytics.jobs.common import open_store
from crm_analytics.models import registry
from crm_analytics.models.gate import champion_map
from crm_analytics.settings import Settings
from crm_analytics.store import RefreshLog
from crm_analytics.tracking import configure


@dataclass(frozen=True)
class StatusReport:
    """``served``: the active snapshot (None before the first scoring); ``champions``: the @champion of
    every family now; ``pending``: families whose champion differs from the one that made the served
    scores; ``refreshes``: the most recent refreshes, newest first."""

    served: dict[str, Any] | None
    champions: dict[str, str | None]
    pending: list[str]
    refreshes: list[dict[str, Any]]

    @property
    def last_refresh(self) -> dict[str, Any] | None:
        return self.refreshes[0] if self.refreshes else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"last_refresh": self.last_refresh}


def status(settings: Settings, refreshes: int = 5) -> StatusReport:
    """The served snapshot, the champions and the last ``refreshes`` refresh runs."""
    store = open_store(settings)
    active = store.active()
    client = configure(settings)
    champions = champion_map(client, registry.FAMILIES)
    served = None
    pending: list[str] = []
    if active is not None:
        served = {
            "snapshot_id": active.snapshot_id,
            "as_of": active.as_of,
            "created_at": active.created_at.isoformat(),
            "customers": active.customers,
            "models": active.models,
        }
        pending = sorted(name for name, version in active.models.items() if champions.get(name) != version)
    runs = [
        {k: v for k, v in asdict(run).items() if k not in ("fingerprint", "report")}
        | {"stages_done": list(run.report or {}), "refused_files": _refused(run.report)}
        for run in RefreshLog(store.engine).runs(refreshes)
    ]
    return StatusReport(served, champions, pending, runs)


def _refused(report: dict[str, Any] | None) -> int:
    """How many incoming files a refresh refused (or could not read)."""
    batches = ((report or {}).get("ingest") or {}).get("batches") or []
    return sum(1 for batch in batches if batch.get("status") != "accepted")
