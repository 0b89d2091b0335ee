"""Spark parity: the feature definitions give the same table on local Spark as on DuckDB.

The Spark tests are marked ``spark`` (select with ``-m spark``, leave out with ``-m "not spark"``) and need
the ``spark`` extra (``pip install -e ".[spark]"``) and Java 17. One local[2] session, bound to loopback,
serves the whole test session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import ibis.expr.types as ir
import pandas as pd
import pytest

from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.features import engines
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.ingest.pipeline import ingest_file
from crm_analytics.ingest.readers import expand_paths
from crm_analytics.settings import Settings, load_settings
from crm_analytics.warehouse import Warehouse, migrations

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEMO = DemoConfig(customers=1_000, seed=11)
CONFIG = FeatureConfig(as_of=date(2025, 6, 30), horizon_days=180)

# pyspark 4.0's pandas conversion passes copy=False to astype, deprecated in pandas 3
pytestmark = pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """The local Spark session (the JVM starts once), stopped after the last test."""
    pytest.importorskip("pyspark", reason='needs the spark extra: pip install -e ".[spark]"')
    scratch = tmp_path_factory.mktemp("spark")
    session = engines.spark_session(conf={"spark.sql.warehouse.dir": str(scratch / "catalog")})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a DuckDB warehouse holding the ingested demo data (built once for the module)."""
    folder = tmp_path_factory.mktemp("demo_warehouse")
    url = f"duckdb:///{folder / 'warehouse.duckdb'}"
    with pytest.MonkeyPatch.context() as patch:  # as the autouse ``isolated`` fixture, for module scope
        for name in [n for n in os.environ if n.startswith("CRM_") and n != "CRM_TEST_POSTGRES_URL"]:
            patch.delenv(name)
        patch.chdir(folder)
        write_demo(generate_demo(DEMO), folder / "demo")
        settings = load_settings()
        with Warehouse(url) as warehouse:
            for path in expand_paths([folder / "demo"]):
                ingest_file(warehouse, path, settings)
    return url


@pytest.fixture
def warehouse(demo_warehouse: str) -> Iterator[Warehouse]:
    with Warehouse(demo_warehouse) as wh:
        yield wh


def column_types(table: ir.Table) -> dict[str, tuple[str, str | None]]:
    """Column -> (Ibis type name, time zone): neither nullability nor timestamp precision."""
    schema = table.schema()
    return {name: (type(dtype).__name__, getattr(dtype, "timezone", None)) for name, dtype in schema.items()}


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


@pytest.mark.spark
def test_feature_table_on_spark_equals_duckdb(
    spark: SparkSession, warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    config = CONFIG.resolved(warehouse.ibis)
    on_spark = engines.connect("spark", settings, warehouse=warehouse, export_dir=tmp_path / "export")

    expected = by_customer(feature_table(warehouse.ibis, config).execute())
    actual = by_customer(feature_table(on_spark, config).execute())

    assert len(expected) > 500
    assert {"share_channel_web", "extras_rate_breakfast", "holdout_spend"} <= set(expected.columns)
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9, atol=0.0)


@pytest.mark.spark
def test_spark_sees_the_warehouse_rows_unshifted(
    spark: SparkSession, warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    on_spark = engines.connect("spark", settings, warehouse=warehouse, export_dir=tmp_path / "export")

    for table, key in [
        ("transactions", "transaction_id"),
        ("transaction_items", ["transaction_id", "line_no"]),
    ]:
        expected = warehouse.ibis.table(table).execute().sort_values(key, ignore_index=True)
        actual = on_spark.table(table).execute().sort_values(key, ignore_index=True)
        assert column_types(on_spark.table(table)) == column_types(warehouse.ibis.table(table))
        for column in expected.select_dtypes("datetime").columns:  # same instants, maybe another unit
            actual[column] = actual[column].astype(expected[column].dtype)
        pd.testing.assert_frame_equal(actual, expected)


@pytest.mark.spark
def test_local_spark_binds_to_loopback_only(spark: SparkSession) -> None:
    conf = spark.sparkContext.getConf()

    assert spark.sparkContext.master == "local[2]"
    assert conf.get("spark.driver.host") == conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.ui.enabled") == "false"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_an_engine_other_than_the_warehouse_backend_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match=r"warehouse is duckdb \(CRM_WAREHOUSE_URL="):
        engines.connect("postgres", settings)


def test_an_unknown_engine_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="engine: expected one of duckdb, postgres, spark"):
        engines.connect("sqlite", settings)


def test_the_warehouse_engine_is_the_warehouse_connection(settings: Settings) -> None:
    with Warehouse(settings.warehouse_url) as warehouse:
        migrations.upgrade(warehouse)
    con = engines.connect("duckdb", settings)
    try:
        assert con.table("transactions").count().execute() == 0
        assert "category" in con.table("transaction_items").columns
    finally:
        con.disconnect()
