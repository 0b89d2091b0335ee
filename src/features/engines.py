"""Open an Ibis connection on which the feature definitions run: ``duckdb``, ``postgres`` or ``spark``.

The feature pipeline reads the tables ``transactions`` and ``transaction_items``. On ``duckdb`` and
``postgres`` that is the warehouse's own Ibis connection, so the engine must be the warehouse's backend
(``CRM_WAREHOUSE_URL``). On ``spark`` the two tables are exported from the warehouse (either backend) to
Parquet files under ``export_dir`` (default ``<CRM_DATA_DIR>/spark``) and registered in the Spark session
as temporary views of the same names.

Local Spark (the default, ``master="local[2]"``) never leaves the machine: ``SPARK_LOCAL_IP`` is set to
127.0.0.1 before the JVM starts, the driver binds to and advertises 127.0.0.1 and the web UI is off.
Timestamps arrive unshifted: the warehouse's ``TIMESTAMP`` (without time zone) columns are written to
Parquet as local timestamps (``isAdjustedToUTC=false``), which Spark reads as ``TIMESTAMP_NTZ``
(``spark.sql.parquet.inferTimestampNTZ.enabled``, set here). The session time zone is UTC as well, so
that where Spark reads them as ``TIMESTAMP`` instead (a session with that inference off), they are not
moved into the driver's time zone either (in ``America/New_York`` 2023-01-01 00:06 would become
2022-12-31 19:06, another day).

Pointing it at a real cluster:

- ``master``: the cluster's URL, e.g. ``spark://host:7077``, ``yarn`` or ``k8s://https://host:443``, or
  ``None`` to take it from ``spark-submit --master`` or ``spark-defaults.conf``; no loopback settings are
  applied then. Pass what the cluster needs in ``spark_conf``, at least ``spark.driver.host`` (an address
  the executors can reach), plus resources such as ``spark.executor.memory``. A session that is already
  running (e.g. created by ``spark-submit`` or a notebook) is reused.
- Where the warehouse lives: executors read the exported Parquet files, so ``export_dir`` must be on
  storage every executor sees (a shared mount; DuckDB and pyarrow write local paths). If the cluster
  already has ``transactions`` and ``transaction_items`` in its catalog (a metastore or lakehouse fed
  from the warehouse), pass ``export=False`` and the definitions run on those tables directly.

Only ``duckdb`` and ``postgres`` are warehouse backends: features computed on Spark are stored back
through the warehouse as usual.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ibis.backends import BaseBackend

from crm_analytics.profiles.tables import LINKS
from crm_analytics.settings import Settings, mask_url
from crm_analytics.warehouse import Warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ENGINES = ("duckdb", "postgres", "spark")
WAREHOUSE_TABLES = ("transactions", "transaction_items")
DEFAULT_MASTER = "local[2]"
LOOPBACK = "127.0.0.1"

# Every session: UTC and local timestamps read as TIMESTAMP_NTZ (see the module docstring). These can be
# changed at runtime, so they are also applied to a reused session.
SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
}
# Every new session: no progress bars on stdout.
START_CONF = {"spark.ui.showConsoleProgress": "false"}
# Local sessions only: bind to and advertise loopback, no web UI.
LOCAL_CONF = {
    "spark.driver.host": LOOPBACK,
    "spark.driver.bindAddress": LOOPBACK,
    "spark.ui.enabled": "false",
}


def connect(
    engine: str,
    settings: Settings,
    *,
    warehouse: Warehouse | None = None,
    master: str | None = DEFAULT_MASTER,
    spark_conf: Mapping[str, str] | None = None,
    export_dir: Path | None = None,
    export: bool = True,
) -> BaseBackend:
    """An Ibis connection on ``engine`` that has the tables ``transactions`` and ``transaction_items``.

    ``warehouse`` is an open warehouse to use (default: one opened from ``settings.warehouse_url``).
    On ``duckdb`` and ``postgres`` the result is the warehouse's connection: when this function opened
    the warehouse, the caller closes it with ``disconnect()``. On ``spark`` the warehouse is only read
    (and closed again if opened here); ``disconnect()`` on the result stops the Spark session.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "spark":
        return _warehouse_connection(engine, settings, warehouse)
    session = spark_session(master, spark_conf)
    if not export:
        return connect_spark(session)
    folder = export_dir if export_dir is not None else settings.data_dir / "spark"
    if warehouse is not None:
        return connect_spark(session, export_tables(warehouse, folder))
    with Warehouse(settings.warehouse_url) as opened:
        return connect_spark(session, export_tables(opened, folder))


def _warehouse_connection(engine: str, settings: Settings, warehouse: Warehouse | None) -> BaseBackend:
    """The warehouse's own Ibis connection, provided the warehouse runs on ``engine``."""
    opened = warehouse if warehouse is not None else Warehouse(settings.warehouse_url)
    if opened.backend != engine:
        if warehouse is None:
            opened.close()
        raise ValueError(
            f"engine {engine!r}: the warehouse is {opened.backend} "
            f"(CRM_WAREHOUSE_URL={mask_url(opened.url)}); "
            f"use engine {opened.backend!r} or 'spark', or point CRM_WAREHOUSE_URL at a {engine} warehouse"
        )
    return opened.ibis


def is_local(master: str | None) -> bool:
    """Whether a Spark master URL runs everything in this process (``local``, ``local[N]``, ``local[*]``)."""
    return master is not None and (master == "local" or master.startswith("local["))


def spark_session(master: str | None = DEFAULT_MASTER, conf: Mapping[str, str] | None = None) -> SparkSession:
    """Create, or reuse, the process's Spark session; a local one is bound to loopback only.

    ``master=None`` leaves the master to ``spark-submit`` or ``spark-defaults.conf``. ``conf`` adds to or
    overrides the defaults. A running session is reused and receives the runtime settings; settings fixed
    at JVM start (master, driver address) then keep their first values.
    """
    from pyspark.sql import SparkSession

    options = SQL_CONF | START_CONF
    # Python UDFs (scoring with mlflow's spark_udf) run in this interpreter, where crm-analytics is
    # installed, unless the cluster says otherwise
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if is_local(master):
        os.environ["SPARK_LOCAL_IP"] = LOOPBACK  # read by the JVM when it starts
        options |= LOCAL_CONF
    options |= dict(conf or {})
    builder: Any = SparkSession.builder.appName("crm-analytics")
    if master is not None:
        builder = builder.master(master)
    for key, value in options.items():
        builder = builder.config(key, value)
    session: SparkSession = builder.getOrCreate()
    for key in SQL_CONF:  # a reused session may have been started with other values
        session.conf.set(key, options[key])
    return session


def export_tables(
    warehouse: Warehouse, folder: Path, tables: tuple[str, ...] = WAREHOUSE_TABLES
) -> dict[str, Path]:
    """Write warehouse tables to ``folder/<table>.parquet`` (replacing older exports); name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    if LINKS not in tables and warehouse.has_table(LINKS):
        tables = (*tables, LINKS)  # features read transactions through the customer links
    for table in tables:
        path = (folder / f"{table}.parquet").resolve()
        warehouse.ibis.table(table).to_parquet(path)
        paths[table] = path
    return paths


def connect_spark(session: SparkSession, tables: Mapping[str, Path] | None = None) -> BaseBackend:
    """Ibis on ``session``, with each Parquet file in ``tables`` registered as a temporary view by name."""
    import ibis

    con = ibis.pyspark.connect(session)
    for name, path in (tables or {}).items():
        con.read_parquet(path, table_name=name)
    return con
