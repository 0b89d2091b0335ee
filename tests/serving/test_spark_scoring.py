"""`crm score --engine spark`: the champions applied on local Spark with mlflow.pyfunc.spark_udf give the
scores that scoring on one machine gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from crm_analytics.features.store import read_features
from crm_analytics.jobs import score as scoring
from crm_analytics.jobs.score_spark import score_on_spark
from crm_analytics.warehouse import Warehouse
from tests.serving.conftest import Served

EXACT = ("p_alive", "expected_purchases", "expected_spend", "clv", "churn_probability")
# pyspark 4.0's pandas conversion passes copy=False to astype, deprecated in pandas 3
pytestmark = [pytest.mark.spark, pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


def test_spark_udf_scores_equal_local_scores(served: Served, tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason='needs the spark extra: pip install -e ".[spark]"')
    settings = served.settings.model_copy(update={"data_dir": tmp_path / "data"})
    with Warehouse(settings.warehouse_url) as warehouse:
        as_of = scoring.latest_cutoff(warehouse)
        features = read_features(warehouse, as_of).set_index("customer_id")
        ran = score_on_spark(settings, warehouse, as_of, tmp_path / "run")
        on_spark = ran.read(sorted(features.index))
    versions, loaded = scoring.champions(settings)
    local = scoring.predict(loaded, features).round(6).to_dict(orient="index")
    assert list(on_spark.index) == sorted(local)
    assert ran.models == {name: version for name, version in versions.items() if name in ran.models}
    for column in EXACT:
        expected = np.array([local[c][column] for c in on_spark.index])
        np.testing.assert_allclose(on_spark[column].round(6), expected, rtol=0, atol=1e-6, err_msg=column)
    assert (on_spark["clv_low"] <= on_spark["clv_high"]).all()  # Monte Carlo: its own draws per partition


def test_crm_score_engine_spark_writes_the_snapshot(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyspark", reason='needs the spark extra: pip install -e ".[spark]"')
    for name, value in served.env.items():
        monkeypatch.setenv(name, value)
    store = f"sqlite:///{tmp_path / 'spark-serving.db'}"
    monkeypatch.setenv("CRM_SERVING_STORE_URL", store)
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path / "data"))

    def no_local_predictions(*_: object) -> None:
        raise AssertionError("scores must come from Spark")

    monkeypatch.setattr(scoring, "predict", no_local_predictions)
    result = CliRunner().invoke(cli, ["score", "--engine", "spark", "--chunk-customers", "50", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scored"] > 0
    engine = sa.create_engine(store)
    with engine.connect() as conn:
        scores = [
            json.loads(s)
            for s in conn.execute(sa.text("SELECT scores FROM serving_customers")).scalars()
            if s
        ]
    engine.dispose()
    assert len(scores) == report["scored"]
    assert all(0 <= s["churn_probability"] <= 1 and s["clv"] >= 0 for s in scores)
    assert not list((tmp_path / "data" / "spark").iterdir())  # the run's exports are gone
    bad = CliRunner().invoke(cli, ["score", "--engine", "flink"])
    assert bad.exit_code == 2
    assert "--engine: expected local or spark" in bad.output
