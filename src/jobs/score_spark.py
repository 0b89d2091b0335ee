"""The champions' scores computed on Spark (``crm score --engine spark``), for more customers than one
machine should score.

The cutoff's feature table is exported from the warehouse to Parquet (streamed, never whole in memory),
read by Spark, and every scored family's ``@champion`` is applied with ``mlflow.pyfunc.spark_udf``
(the same pyfunc artifacts as everywhere, loaded on the executors; ``env_manager="local"``: the
executors use this installation). The scores land in Parquet next to the export; batch scoring then
reads them range by range instead of predicting itself, so everything else about a snapshot (segments,
briefs, profiles, the atomic switch) is the same as on one machine.

Equal to scoring on one machine, but for the CLV interval: its Monte Carlo draws follow row positions
within a partition, as they follow them within a chunk there. A real cluster needs ``spark.master``
and executors that read the export folder: see ``features/engines.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import ibis
import mlflow
import pandas as pd

from crm_analytics.features.engines import spark_session
from crm_analytics.features.store import build_record
from crm_analytics.models import registry
from crm_analytics.models.gate import champion_versions
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class SparkScores:
    """Where a Spark run left its scores, and the model versions that made them."""

    path: Path
    models: dict[str, str]

    def read(self, customer_ids: list[str]) -> pd.DataFrame:
        """The scores of these customers, indexed by customer id in their order."""
        query = "SELECT * FROM read_parquet(?) WHERE customer_id IN (SELECT unnest(?))"
        with duckdb.connect() as con:
            frame = con.execute(query, [str(self.path / "*.parquet"), customer_ids]).df()
        return frame.set_index("customer_id").reindex(customer_ids)


def score_on_spark(
    settings: Settings,
    warehouse: Warehouse,
    as_of: date,
    folder: Path,
    session: SparkSession | None = None,
) -> SparkScores:
    """Every customer's scores at ``as_of`` from every scored family, computed on Spark, as Parquet in
    ``folder`` (with the exported features: the caller deletes the folder, they are about customers)."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    columns = build_record(warehouse, as_of)["columns"]
    table = warehouse.ibis.table("features")
    export = folder / f"features-{as_of.isoformat()}.parquet"
    table.filter(table.as_of == ibis.date(as_of.isoformat())).select(*columns).to_parquet(export)

    families = registry.scored()
    versions = champion_versions(configure(settings), families)
    spark = session or spark_session(settings.spark_master)
    features = spark.read.parquet(str(export))
    parts = []
    for family in families:
        version = versions[family.name][0]
        output = ", ".join(f"{name} {kind}" for name, kind in family.outputs.items())
        udf = _udf(spark, family.name, version, output)
        inputs = [features[c].cast("double").alias(c) for c in _input_names(family.name, version)]
        parts.append(udf(*inputs).alias(family.key))
    scored = features.select("customer_id", *parts).select(
        "customer_id", *(f"{family.key}.*" for family in families)
    )
    out = folder / f"scores-{as_of.isoformat()}.parquet"
    scored.write.mode("overwrite").parquet(str(out))
    return SparkScores(out, {name: version for name, (version, _) in versions.items()})


def _udf(spark: SparkSession, name: str, version: str, output: str) -> Any:
    return mlflow.pyfunc.spark_udf(
        spark, f"models:/{name}/{version}", result_type=output, env_manager="local"
    )


def _input_names(name: str, version: str) -> list[str]:
    """The columns a registered model's signature asks for."""
    info = mlflow.models.get_model_info(f"models:/{name}/{version}")
    schema = info.signature.inputs if info.signature is not None else None
    if schema is None:
        raise LookupError(f"{name} v{version}: no input signature; retrain it with `crm train`")
    return list(schema.input_names())
