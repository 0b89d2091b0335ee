"""Warehouses loaded through the real pipeline (raw files -> ingest) for the feature tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_analytics.datasets.cdnow import write_cdnow
from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.ingest.readers import expand_paths
from crm_analytics.settings import load_settings
from crm_analytics.warehouse import Warehouse


def load(warehouse: Warehouse, folder: Path) -> Warehouse:
    settings = load_settings()
    for path in expand_paths([folder]):
        report = ingest_file(warehouse, path, settings)
        assert report.rows_rejected == 0, report.rejections_by_reason
    return warehouse


@pytest.fixture(scope="session")
def cdnow_sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    folder = tmp_path_factory.mktemp("cdnow_sample")
    write_cdnow("sample", folder / "raw")
    with Warehouse(f"duckdb:///{folder / 'warehouse.duckdb'}") as warehouse:
        yield load(warehouse, folder / "raw")


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "raw"
    write_demo(generate_demo(DemoConfig(customers=1_500, seed=3)), folder)
    return folder


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_folder: Path) -> Iterator[Warehouse]:
    folder = tmp_path_factory.mktemp("demo_warehouse")
    with Warehouse(f"duckdb:///{folder / 'warehouse.duckdb'}") as warehouse:
        yield load(warehouse, demo_folder)
