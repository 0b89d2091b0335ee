"""A demo chain ingested through the real pipeline, with profiles built (no MLflow run)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.profiles.build import ProfileBuild, build_profiles
from crm_analytics.settings import load_settings
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load


@dataclass
class LinkedDemo:
    warehouse: Warehouse
    build: ProfileBuild
    raw: Path  # the generated files; truth under raw/truth


@pytest.fixture(scope="session")
def linked_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkedDemo]:
    folder = tmp_path_factory.mktemp("linked_demo")
    raw = folder / "raw"
    write_demo(generate_demo(DemoConfig(customers=3_000, seed=11)), raw)
    with Warehouse(f"duckdb:///{folder / 'warehouse.duckdb'}") as warehouse:
        load(warehouse, raw)
        build = build_profiles(warehouse, load_settings(), truth_dir=raw / "truth", log_run=False)
        yield LinkedDemo(warehouse, build, raw)
