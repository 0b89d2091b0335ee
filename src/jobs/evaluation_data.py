"""Labelled feature tables for ``crm evaluate``: a named dataset, through the real pipeline, at a split.

``cdnow-sample``, ``cdnow-master`` (the real CDNOW data in the lifetimes wheel) and ``demo`` (the
synthetic hotel chain) are written as raw files and ingested into their own scratch warehouse under
``<data_dir>/evaluate/`` (re-running reuses it: ingest is idempotent); ``warehouse`` evaluates on the
configured warehouse itself. The calibration period's last third (at most one horizon) is labelled: the
validation window the CLV purchase model is chosen on and its intervals recalibrated on
(``models.clv.calibration``). An earlier labelled table, with the same feature columns and labels
ending at ``calibration_end``, trains the supervised models out of time: at ``calibration_end -
horizon`` when the data holds a horizon of history before that, else at the validation window's cutoff
with its shorter labels (CDNOW: 90 days before a 273-day holdout).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from crm_analytics.errors import InvalidInputError
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.features.repeat_purchases import daily_repeat_purchases
from crm_analytics.features.rfm import TimeUnit
from crm_analytics.jobs.common import open_reader
from crm_analytics.models.clv.calibration import ValidationWindow, validation_window
from crm_analytics.profiles.links import customer_transactions
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse

DATASETS: tuple[str, ...] = ("cdnow-sample", "cdnow-master", "demo", "warehouse")
# the split each dataset is known for: CDNOW's 39 + 39 weeks; the demo chain's two half-years of 2025
DEFAULT_SPLITS = {
    "cdnow-sample": (date(1997, 9, 30), date(1998, 6, 30)),
    "cdnow-master": (date(1997, 9, 30), date(1998, 6, 30)),
    "demo": (date(2025, 6, 30), date(2025, 12, 31)),
}
TIME_UNITS: dict[str, TimeUnit] = {"cdnow-sample": "weeks", "cdnow-master": "weeks"}


@dataclass
class EvaluationData:
    """What an evaluation reads: labelled tables at the cutoff and one horizon earlier, daily counts."""

    dataset: str
    features: pd.DataFrame
    train_features: pd.DataFrame | None
    daily: pd.DataFrame
    horizon_days: int
    time_unit: TimeUnit
    validation: ValidationWindow | None = None  # the calibration period's last weeks, labelled


def default_split(dataset: str) -> tuple[date, date] | None:
    return DEFAULT_SPLITS.get(dataset)


def scratch_warehouse(settings: Settings, dataset: str, customers: int, seed: int) -> tuple[str, Path]:
    """The URL and raw-data folder of a dataset's own evaluation warehouse."""
    name = f"demo-{customers}-{seed}" if dataset == "demo" else dataset
    folder = settings.data_dir / "evaluate" / name
    return f"duckdb:///{(folder / 'warehouse.duckdb').resolve()}", folder / "raw"


def write_raw(dataset: str, folder: Path, customers: int, seed: int) -> None:
    """Write a dataset's raw files once: into a partial folder renamed when complete, so an interrupted
    write is never mistaken for a finished one; an existing folder is reused."""
    if folder.exists():
        return
    partial = folder.with_name(f"{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    if dataset.startswith("cdnow-"):
        from crm_analytics.datasets.cdnow import write_cdnow

        write_cdnow(dataset.removeprefix("cdnow-"), partial)
    else:
        from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo

        write_demo(generate_demo(DemoConfig(customers=customers, seed=seed)), partial)
    partial.rename(folder)


def open_dataset(settings: Settings, url: str) -> Warehouse:
    """The warehouse ``prepare_warehouse`` named, opened to read: the configured one through
    ``open_reader`` (its published copy on DuckDB), a scratch one directly."""
    return open_reader(settings) if url == settings.warehouse_url else Warehouse(url)


def ingest_folder(warehouse: Warehouse, folder: Path, settings: Settings) -> None:
    """Ingest every raw file of a dataset; a refused batch stops the evaluation with its reason."""
    from crm_analytics.ingest.pipeline import ingest_file
    from crm_analytics.ingest.readers import expand_paths

    for path in expand_paths([folder]):
        ingest_file(warehouse, path, settings)


def prepare_warehouse(
    settings: Settings,
    dataset: str,
    customers: int = 20_000,
    seed: int = 42,
    status: Callable[[str], None] = lambda message: None,
) -> tuple[str, Path | None]:
    """The warehouse URL a dataset is evaluated in, written and ingested if needed, and its raw folder
    (None for ``warehouse``: the configured warehouse as it is)."""
    if dataset not in DATASETS:
        raise InvalidInputError(f"--dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    if dataset == "warehouse":
        return settings.warehouse_url, None
    url, raw = scratch_warehouse(settings, dataset, customers, seed)
    status(f"writing {dataset} raw files")
    write_raw(dataset, raw, customers, seed)
    Path(url.removeprefix("duckdb:///")).parent.mkdir(parents=True, exist_ok=True)
    with Warehouse(url) as warehouse:
        status(f"ingesting {dataset}")
        ingest_folder(warehouse, raw, settings)
    return url, raw


def load_evaluation_data(
    settings: Settings,
    dataset: str,
    calibration_end: date,
    holdout_end: date,
    *,
    customers: int = 20_000,
    seed: int = 42,
    time_unit: TimeUnit | None = None,
    status: Callable[[str], None] = lambda message: None,
) -> EvaluationData:
    """Build (or reuse) the dataset's warehouse and the labelled feature tables at the split."""
    if holdout_end <= calibration_end:
        raise InvalidInputError("--holdout-end: must come after --calibration-end")
    unit: TimeUnit = time_unit or TIME_UNITS.get(dataset, "days")
    horizon_days = (holdout_end - calibration_end).days
    url, _ = prepare_warehouse(settings, dataset, customers, seed, status)
    with open_dataset(settings, url) as warehouse:
        con = warehouse.ibis
        first_day = pd.Timestamp(customer_transactions(con).timestamp.min().execute()).date()
        if calibration_end < first_day:
            raise InvalidInputError(
                f"--calibration-end: the data starts on {first_day}, after {calibration_end}"
            )
        train_as_of = calibration_end - timedelta(days=horizon_days)
        status("building feature tables")
        train_config = None
        if train_as_of - timedelta(days=horizon_days) >= first_day:
            train_config = FeatureConfig(train_as_of, horizon_days, unit).resolved(con)
        config = FeatureConfig(calibration_end, horizon_days, unit)
        config = (
            replace(config, channels=train_config.channels, extra_categories=train_config.extra_categories)
            if train_config
            else config
        )
        features = feature_table(con, config).execute()
        train_features = feature_table(con, train_config).execute() if train_config else None
        validation = validation_window(con, calibration_end, horizon_days, unit)
        if train_features is None and validation is not None:  # out of time on the window's labels
            window = replace(config.resolved(con), as_of=date.fromisoformat(validation.cutoff))
            window = replace(window, horizon_days=validation.horizon_days)
            train_features = feature_table(con, window).execute()
        daily = daily_repeat_purchases(customer_transactions(con), calibration_end, holdout_end).execute()
    if features.empty:
        raise InvalidInputError(f"--calibration-end: no customer had bought by {calibration_end}")
    return EvaluationData(dataset, features, train_features, daily, horizon_days, unit, validation)
