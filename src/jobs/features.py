"""Purchase-history features as of a cutoff: build and store them, export one build, the catalog."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from crm_analytics.errors import InvalidInputError
from crm_analytics.features import engines
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.features.store import read_features, write_features
from crm_analytics.jobs.common import open_reader, open_warehouse
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse

TIME_UNITS = ("days", "weeks")


@dataclass(frozen=True)
class FeatureBuildReport:
    as_of: str
    engine: str
    rows: int
    columns: int
    labels: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FeatureExportReport:
    as_of: str
    rows: int
    columns: int
    file: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build(
    settings: Settings,
    as_of: date,
    horizon_days: int | None = None,
    time_unit: str = "days",
    engine: str | None = None,
) -> FeatureBuildReport:
    """Compute the features as of ``as_of`` on ``engine`` (default: the warehouse's own backend) and
    store them, replacing that cutoff's build; with ``horizon_days``, labels from the days after it.

    The engine only computes: the result is validated and written through the warehouse either way."""
    if time_unit not in TIME_UNITS:
        raise InvalidInputError(f"--time-unit: expected days or weeks, got {time_unit!r}")
    if horizon_days is not None and horizon_days < 1:
        raise InvalidInputError(f"--horizon-days: must be at least 1, got {horizon_days}")
    with open_warehouse(settings) as warehouse:
        return build_in(warehouse, settings, as_of, horizon_days, time_unit, engine)


def build_in(
    warehouse: Warehouse,
    settings: Settings,
    as_of: date,
    horizon_days: int | None = None,
    time_unit: str = "days",
    engine: str | None = None,
) -> FeatureBuildReport:
    """``build`` on an open warehouse (the daily refresh holds one for all its stages)."""
    config = FeatureConfig(as_of=as_of, horizon_days=horizon_days, time_unit=time_unit)
    engine = engine or warehouse.backend
    try:
        con = engines.connect(engine, settings, warehouse=warehouse, master=settings.spark_master)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    resolved = config.resolved(con)
    frame = feature_table(con, resolved).execute()
    rows = write_features(warehouse, frame, resolved)
    return FeatureBuildReport(str(as_of), engine, rows, len(frame.columns), horizon_days is not None)


def export(settings: Settings, as_of: date, out: Path) -> FeatureExportReport:
    """Write the stored feature table of ``as_of`` (in the published copy) to a Parquet file."""
    with open_reader(settings) as warehouse:
        frame = read_features(warehouse, as_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    return FeatureExportReport(str(as_of), len(frame), len(frame.columns), str(out))
