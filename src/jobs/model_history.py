"""``crm models history``: every registered version of the model families, with the gate's decision on
each and which one is champion, read from the MLflow registry (the versions' ``promotion`` and ``gate``
tags and their runs' gate metric)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from mlflow.exceptions import MlflowException

from crm_analytics.models import registry
from crm_analytics.models.gate import champion_version
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure


@dataclass(frozen=True)
class VersionRecord:
    """One registered version and what the gate made of it."""

    model: str
    version: str
    created: str  # ISO, UTC
    champion: bool
    holdout: str | None
    metric: str | None
    value: float | None
    promotion: str | None  # why it became champion (first, beat vN: figures, or a forced reason)
    gate: dict[str, Any] | None  # the gate's figures when it weighed them (passed or not)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def history(settings: Settings, model: str | None = None) -> list[VersionRecord]:
    """Every version of ``model`` (default: every family), oldest first per family."""
    client = configure(settings)
    families = [registry.family(model)] if model else list(registry.FAMILIES)
    records = []
    for family in families:
        try:
            versions = client.search_model_versions(f"name = '{family.name}'")
        except MlflowException:
            continue
        champion = champion_version(client, family.name)
        metric = family.gate.metric if family.gate else None
        for version in sorted(versions, key=lambda v: int(v.version)):
            run = client.get_run(str(version.run_id))
            gate = version.tags.get("gate")
            records.append(
                VersionRecord(
                    model=family.name,
                    version=str(version.version),
                    created=_iso(version.creation_timestamp),
                    champion=champion is not None and str(champion.version) == str(version.version),
                    holdout=run.data.tags.get("holdout"),
                    metric=metric,
                    value=run.data.metrics.get(metric) if metric else None,
                    promotion=version.tags.get("promotion"),
                    gate=json.loads(gate) if gate else None,
                )
            )
    return records


def _iso(milliseconds: int) -> str:
    return datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat(timespec="seconds")
