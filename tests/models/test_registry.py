"""Training logs to MLflow and registers; the gate promotes only a candidate that beats the champion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from crm_analytics.models.churn.family import NAME as CHURN_NAME
from crm_analytics.models.churn.family import train_churn
from crm_analytics.models.clv.family import NAME as CLV_NAME
from crm_analytics.models.clv.family import train_clv
from crm_analytics.models.gate import PromotionRefusedError, UnweighableError, champion_version, promote
from crm_analytics.settings import Settings, load_settings
from crm_analytics.tracking import configure
from tests.models.test_churn_and_value import HOLDOUT_DAYS, cdnow_features

pytestmark = pytest.mark.slow  # trains and registers CLV and churn in MLflow on CDNOW


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return cdnow_features("sample", tmp_path_factory.mktemp("cdnow_registry"))


@pytest.fixture
def settings(isolated: Path) -> Settings:
    """The autouse ``isolated`` fixture runs each test in a temporary folder: mlruns/ is a fresh store."""
    return load_settings()


def test_training_is_logged_registered_and_reproducible(settings: Settings, features: pd.DataFrame) -> None:
    first = train_clv(settings, features, HOLDOUT_DAYS)
    second = train_clv(settings, features, HOLDOUT_DAYS)
    assert (first.model, first.version, second.version) == (CLV_NAME, "1", "2")
    assert first.metrics == second.metrics
    assert first.holdout == second.holdout
    assert first.holdout.startswith("1997-09-30+273d:")

    client = configure(settings)
    run = client.get_run(first.run_id)
    # on CDNOW_sample Pareto/NBD has the lowest holdout-purchase RMSE (1.603; MBG 1.607, BG/NBD 1.608)
    assert run.data.params["purchase_model"] == "pareto"
    assert run.data.params["selected_on"] == "holdout"  # train_clv given no validation window
    assert run.data.params["interval_levels"] == "nominal"  # nothing to recalibrate on
    assert run.data.params["param_r"].startswith("0.553")
    metrics = run.data.metrics
    assert metrics["bgnbd_holdout_purchases_rmse"] > metrics["pareto_holdout_purchases_rmse"]
    assert "holdout_spearman" in run.data.metrics
    assert 0.8 < run.data.metrics["interval_coverage_3plus"] <= 1.0  # the PIT coverage by group, logged
    plots = {Path(a.path).name for a in client.list_artifacts(first.run_id, "plots")}
    assert plots == {
        "conditional_expectations.png",
        "holdout_spend_gains.png",
        "alive_and_expected_matrices.png",
        "holdout_spend_pit.png",
        "predictive_checks.png",
    }
    report = json.loads(Path(client.download_artifacts(first.run_id, "evaluation.json")).read_text())
    assert report["selected"] == "pareto"

    served = mlflow.pyfunc.load_model(f"models:/{CLV_NAME}/{first.version}")
    predicted = served.predict(features[["frequency", "recency", "T", "monetary_value"]].head(50))
    assert (predicted["clv_low"] <= predicted["clv_high"]).all()
    assert (predicted["clv_low"] >= 0).all()
    assert (predicted["clv_high"] > predicted["clv_low"]).any()
    schema = json.loads(Path(client.download_artifacts(first.run_id, "feature_schema.json")).read_text())
    assert schema["frequency"] == "float64"
    assert Path("mlruns/mlflow.db").exists()
    assert list(Path("mlruns/artifacts").iterdir())


def test_logged_model_predicts_and_its_example_holds_no_customer(
    settings: Settings, features: pd.DataFrame
) -> None:
    result = train_churn(settings, features, HOLDOUT_DAYS)
    configure(settings)
    model = mlflow.pyfunc.load_model(f"models:/{CHURN_NAME}/{result.version}")
    rows = features.drop(columns=["customer_id"]).head(20)
    predicted = model.predict(rows)
    assert predicted["churn_probability"].between(0, 1).all()
    plots = {Path(a.path).name for a in MlflowClient().list_artifacts(result.run_id, "plots")}
    assert plots == {"calibration.png", "churn_gains_and_lift.png"}

    example_path = Path(
        mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/model/input_example.json")
    )
    logged = json.loads(example_path.read_text())
    example = pd.DataFrame(logged["data"], columns=logged["columns"])
    assert "customer_id" not in example.columns
    real_rows = features[example.columns].round(9)
    assert real_rows.merge(example.round(9), how="inner").empty  # made of quantiles, no customer's row


def test_promotion_gate(settings: Settings, features: pd.DataFrame) -> None:
    client: MlflowClient = configure(settings)
    first = train_clv(settings, features, HOLDOUT_DAYS)
    assert promote(client, CLV_NAME).reason == "first champion"

    train_clv(settings, features, HOLDOUT_DAYS)  # same data, same metric: not better
    with pytest.raises(PromotionRefusedError, match="does not beat the champion v1"):
        promote(client, CLV_NAME)
    assert str(champion_version(client, CLV_NAME).version) == first.version

    with pytest.raises(ValueError, match="must say why"):
        promote(client, CLV_NAME, force=True)
    forced = promote(client, CLV_NAME, force=True, reason="rollback drill")
    assert (forced.version, forced.forced) == ("2", True)
    assert client.get_model_version(CLV_NAME, "2").tags["promotion"] == "rollback drill"

    other_split = features.assign(holdout_spend=features["holdout_spend"] * 2)
    train_clv(settings, other_split, HOLDOUT_DAYS)
    with pytest.raises(PromotionRefusedError, match="not comparable"):
        promote(client, CLV_NAME)

    def cannot_weigh(family: Any, candidate: Any, champion: Any) -> Any:
        raise UnweighableError(f"{family.name} v{candidate.version}: cannot be weighed: no window")

    # a new version of the first run's model (no training needed to be a candidate)
    source = client.get_model_version(CLV_NAME, first.version).source
    unweighable = client.create_model_version(CLV_NAME, str(source), run_id=first.run_id).version
    with pytest.raises(PromotionRefusedError, match="cannot be weighed"):
        promote(client, CLV_NAME, judge=cannot_weigh)
    # the refusal is the version's decision, which `crm retrain` does not weigh again every night
    decided = json.loads(client.get_model_version(CLV_NAME, unweighable).tags["gate"])
    assert decided == {"passed": False, "reason": f"{CLV_NAME} v{unweighable}: cannot be weighed: no window"}
