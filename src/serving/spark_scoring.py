"""The champions' scores computed on Spark (``crm score --engine spark``), for more customers than one
machine should score.

The cutoff's feature table is exported from the warehouse to Parquet (streamed, never whole in memory),
read by Spark, and the ``@champion`` CLV and churn models are applied with ``mlflow.pyfunc.spark_udf``
(the same pyfunc artifacts as everywhere, loaded on the executors; ``env_manager="local"``: the
executors use this installation). The scores land in Parquet next to the export; batch scoring then
reads them range by range instead of predicting itself, so everything else about a snapshot (segments,
briefs, profiles, the atomic switch) is the same as on one machine.

Equal to scoring on one machine, but for the CLV interval: its Monte Carlo draws follow row positions
within a partition, as they follow them within a chunk there. A real cluster needs ``spark.master``
and executors that read the export folder: see ``features/engines.py``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import duckdb
import ibis
import mlflow
import pandas as pd

from crm_analytics.features.engines import spark_session
from crm_analytics.features.store import build_record
from crm_analytics.ingest.warehouse import Warehouse
from crm_analytics.models.train import CHURN_NAME, CLV_NAME
from crm_analytics.serving.models import champion_versions
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

BTYD_COLUMNS = ("frequency", "recency", "T", "monetary_value")
CLV_OUTPUT = "p_alive double, expected_purchases double, expected_spend double, clv double, " + (
    "clv_low double, clv_high double"
)
CHURN_OUTPUT = "churn_probability double"


class SparkScores(NamedTuple):
    """Where a Spark run left its scores, and the model versions that made them."""

    path: Path
    models: dict[str, str]


def score_on_spark(
    settings: Settings,
    warehouse: Warehouse,
    as_of: date,
    folder: Path,
    session: SparkSession | None = None,
) -> SparkScores:
    """Every customer's CLV and churn scores at ``as_of``, computed on Spark, as Parquet in ``folder``
    (with the exported features: the caller deletes the folder, they are about customers)."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    columns = build_record(warehouse, as_of)["columns"]
    table = warehouse.ibis.table("features")
    export = folder / f"features-{as_of.isoformat()}.parquet"
    table.filter(table.as_of == ibis.date(as_of.isoformat())).select(*columns).to_parquet(export)

    versions = champion_versions(configure(settings))
    spark = session or spark_session(settings.spark_master)
    features = spark.read.parquet(str(export))
    clv = _udf(spark, CLV_NAME, versions[CLV_NAME][0], CLV_OUTPUT)
    churn = _udf(spark, CHURN_NAME, versions[CHURN_NAME][0], CHURN_OUTPUT)
    churn_inputs = _input_names(CHURN_NAME, versions[CHURN_NAME][0])
    scored = features.select(
        "customer_id",
        clv(*[features[c].cast("double").alias(c) for c in BTYD_COLUMNS]).alias("clv_scores"),
        churn(*[features[c].cast("double").alias(c) for c in churn_inputs]).alias("churn_scores"),
    ).select("customer_id", "clv_scores.*", "churn_scores.*")
    out = folder / f"scores-{as_of.isoformat()}.parquet"
    scored.write.mode("overwrite").parquet(str(out))
    return SparkScores(out, {CLV_NAME: versions[CLV_NAME][0], CHURN_NAME: versions[CHURN_NAME][0]})


def read_scores(scores: SparkScores, customer_ids: list[str]) -> pd.DataFrame:
    """The Spark scores of these customers, indexed by customer id in their order."""
    query = "SELECT * FROM read_parquet(?) WHERE customer_id IN (SELECT unnest(?))"
    with duckdb.connect() as con:
        frame = con.execute(query, [str(scores.path / "*.parquet"), customer_ids]).df()
    return frame.set_index("customer_id").reindex(customer_ids)


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
