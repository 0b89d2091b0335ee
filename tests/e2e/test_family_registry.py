"""A model family is one record in the registry: a toy family, added with one entry, is trained,
promoted through its gate and scored by the same jobs as CLV and churn, with no other change."""

from __future__ import annotations

import json
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel

from crm_analytics.datasets.demo.config import DEMO_CUTOFF
from crm_analytics.errors import InvalidInputError
from crm_analytics.jobs import run, score, train
from crm_analytics.jobs.common import open_store, open_warehouse
from crm_analytics.models import registry
from crm_analytics.models.family import Gate, ModelFamily, TrainRequest, TrainResult, predict_by_customer
from crm_analytics.models.gate import PromotionRefusedError
from crm_analytics.models.training import (
    labelled_build,
    log_and_register,
    prepare,
    quantile_example,
    training_run,
)
from crm_analytics.settings import Settings, load_settings
from crm_analytics.tracking import configure

NAME = "crm-test-visits"


class VisitsPyfunc(PythonModel):
    """Expected purchase days in the horizon: a fitted rate times past repeat purchase days."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"expected_visits": model_input["frequency"].to_numpy(float) * self.rate})


def train_visits(request: TrainRequest) -> TrainResult:
    build = labelled_build(request.warehouse, request.as_of)
    features = prepare(build.features)
    with training_run(
        request.settings, NAME, features, build.horizon_days, build.time_unit, request.seed
    ) as (
        run_,
        holdout,
    ):
        rate = float(features["holdout_purchase_days"].sum() / max(features["frequency"].sum(), 1.0))
        predicted = features["frequency"].to_numpy(float) * rate
        metrics = {"mae": float(np.abs(predicted - features["holdout_purchase_days"]).mean())}
        mlflow.log_metrics(metrics)
        version = log_and_register(VisitsPyfunc(rate), quantile_example(features[["frequency"]]), NAME)
    return TrainResult(NAME, version, run_.info.run_id, holdout, metrics)


def score_visits(model: Any, features: pd.DataFrame) -> pd.DataFrame:
    return predict_by_customer(model, features[["frequency"]], features.index)


TOY = ModelFamily(
    key="visits",
    name=NAME,
    summary="a toy family for the registry test",
    pyfunc=VisitsPyfunc,
    train=train_visits,
    gate=Gate("mae", higher_is_better=False),
    score=score_visits,
    outputs={"expected_visits": "double"},
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A small demo project (`crm run` on 300 guests) in a folder of its own."""
    folder = tmp_path_factory.mktemp("registry_project")
    settings = load_settings(
        data_dir=folder / "data",
        warehouse_url=f"duckdb:///{folder / 'data' / 'warehouse.duckdb'}",
        mlflow_tracking_uri=f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}",
        mlflow_artifact_root=folder / "mlruns" / "artifacts",
        serving_store_url=f"sqlite:///{folder / 'data' / 'serving.db'}",
    )
    run.run(settings, customers=300, seed=5)
    return settings


def test_a_registered_toy_family_is_trained_promoted_and_scored(
    project: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidInputError, match="model: expected one of"):
        train.train(project, "visits", DEMO_CUTOFF)
    monkeypatch.setattr(registry, "FAMILIES", (*registry.FAMILIES, TOY))  # the one registry entry

    first = train.train(project, "visits", DEMO_CUTOFF)
    assert (first.model, first.version) == (NAME, "1")
    assert train.promote(project, "visits").reason == "first champion"
    train.train(project, "visits", DEMO_CUTOFF)  # same data: the same error, which does not win
    with pytest.raises(PromotionRefusedError, match="does not beat the champion v1"):
        train.promote(project, "visits")

    report = score.score(project, DEMO_CUTOFF)
    assert report.models[NAME] == "1"
    with open_warehouse(project) as warehouse:
        stored = warehouse.fetch(
            "SELECT customer_id, frequency FROM features WHERE as_of = DATE '2025-06-30'"
        )
        scores = warehouse.fetch(  # `crm run` scored 2025-12-31 too (scores are kept per cutoff)
            "SELECT customer_id, expected_visits, models FROM customer_scores WHERE as_of = DATE '2025-06-30'"
        )
    expected = stored.set_index("customer_id")["frequency"] * VisitsPyfunc(_rate(project)).rate
    got = scores.set_index("customer_id")["expected_visits"]
    np.testing.assert_allclose(got.loc[expected.index], expected, rtol=1e-9)
    assert json.loads(scores["models"].iloc[0])[NAME] == "1"
    record = open_store(project).customer(str(expected.index[0]))
    assert record is not None
    assert record.scores is not None
    assert record.scores["expected_visits"] == pytest.approx(expected.iloc[0], abs=1e-6)


def _rate(settings: Settings) -> float:
    """The champion's fitted rate, read back from the registry."""
    configure(settings)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    return float(model.unwrap_python_model().rate)
