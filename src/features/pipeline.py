"""Build a feature table on an engine and store it in the warehouse: what ``crm features build`` runs."""

from __future__ import annotations

from typing import Any

from crm_analytics.features import engines
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.features.store import write_features
from crm_analytics.ingest.warehouse import Warehouse
from crm_analytics.settings import Settings


def build_and_store(settings: Settings, config: FeatureConfig, engine: str | None = None) -> dict[str, Any]:
    """Compute features as of ``config.as_of`` on ``engine`` (default: the warehouse's) and store them.

    The engine only computes: the result is validated and written through the warehouse either way.
    """
    with Warehouse(settings.warehouse_url) as warehouse:
        engine = engine or warehouse.backend
        con = engines.connect(engine, settings, warehouse=warehouse, master=settings.spark_master)
        resolved = config.resolved(con)
        frame = feature_table(con, resolved).execute()
        rows = write_features(warehouse, frame, resolved)
    return {
        "as_of": str(config.as_of),
        "engine": engine,
        "rows": rows,
        "columns": len(frame.columns),
        "labels": config.horizon_days is not None,
    }
