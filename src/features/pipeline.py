"""Build a feature table on an engine and store it in the warehouse: what ``crm features build`` runs."""

from __future__ import annotations

from typing import Any

from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.features.store import write_features
from crm_analytics.ingest.warehouse import Warehouse
from crm_analytics.settings import Settings

ENGINES = ("duckdb", "postgres", "spark")


def build_and_store(settings: Settings, config: FeatureConfig, engine: str | None = None) -> dict[str, Any]:
    """Compute features as of ``config.as_of`` on ``engine`` (default: the warehouse's) and store them."""
    with Warehouse(settings.warehouse_url) as warehouse:
        engine = engine or warehouse.backend
        if engine not in ENGINES:
            raise ValueError(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
        if engine != warehouse.backend:
            raise ValueError(
                f"--engine {engine}: the warehouse is {warehouse.backend} (CRM_WAREHOUSE_URL); "
                f"run on {warehouse.backend} or point CRM_WAREHOUSE_URL at a {engine} warehouse"
            )
        resolved = config.resolved(warehouse.ibis)
        frame = feature_table(warehouse.ibis, resolved).execute()
        rows = write_features(warehouse, frame, resolved)
    return {
        "as_of": str(config.as_of),
        "engine": engine,
        "rows": rows,
        "columns": len(frame.columns),
        "labels": config.horizon_days is not None,
    }
