"""Churn and value models against the BTYD and recency baselines, on real CDNOW data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from crm_analytics.datasets.cdnow import write_cdnow
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.models.churn.evaluation import evaluate_churn
from crm_analytics.models.churn.model import ChurnModel, btyd_features
from crm_analytics.models.clv.evaluation import evaluate_clv
from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.clv.spend import SpendModel
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.metrics import bootstrap_difference, churn_metrics, top_share, value_metrics
from crm_analytics.warehouse import Warehouse
from tests.features.conftest import load

CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_DAYS = 273  # 39 weeks, to 1998-06-30


def cdnow_features(variant: str, folder: Path) -> pd.DataFrame:
    write_cdnow(variant, folder / "raw")
    with Warehouse(f"duckdb:///{folder / 'w.duckdb'}") as warehouse:
        load(warehouse, folder / "raw")
        config = FeatureConfig(as_of=CALIBRATION_END, horizon_days=HOLDOUT_DAYS, time_unit="weeks")
        return feature_table(warehouse.ibis, config).execute()


@pytest.fixture(scope="module")
def sample_features(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return cdnow_features("sample", tmp_path_factory.mktemp("cdnow"))


def test_probability_of_no_purchase_matches_its_definition(sample_features: pd.DataFrame) -> None:
    summary = sample_features.set_index("customer_id")
    model = CLVModel().fit(summary)
    quiet = model.probability_no_purchase(summary, 39)
    assert ((quiet >= 0) & (quiet <= 1)).all()
    # a customer with no repeat purchase who is certainly alive: P(quiet) = ((a+T)/(a+T+t))^r
    r, alpha = model.params_["r"], model.params_["alpha"]
    newcomer = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0], "monetary_value": [0.0]})
    assert model.probability_no_purchase(newcomer, 39)[0] == pytest.approx((alpha / (alpha + 39)) ** r)
    # and it ranks actual churners above buyers
    assert (
        churn_metrics(summary["churned"].to_numpy(), quiet, summary["spend_total"].to_numpy(), True)[
            "roc_auc"
        ]
        > 0.7
    )


def test_churn_model_is_seeded_and_reproducible(sample_features: pd.DataFrame) -> None:
    summary = sample_features.set_index("customer_id")
    inputs = model_inputs(summary.join(btyd_features(CLVModel().fit(summary), summary, 39)))
    first = ChurnModel(seed=7).fit(inputs, summary["churned"]).predict_proba(inputs)
    second = ChurnModel(seed=7).fit(inputs, summary["churned"]).predict_proba(inputs)
    np.testing.assert_array_equal(first, second)
    assert (
        "lead_time_days_mean" not in ChurnModel().fit(inputs, summary["churned"]).feature_names_
    )  # all null


def test_models_check_their_inputs(sample_features: pd.DataFrame) -> None:
    summary = sample_features.set_index("customer_id")
    inputs = model_inputs(summary)
    with pytest.raises(NotFittedError, match="this ChurnModel is not fitted yet; call fit first"):
        ChurnModel().predict_proba(inputs)
    fitted = SpendModel().fit(inputs, summary["holdout_spend"])
    with pytest.raises(ValueError, match="missing column 'frequency'"):
        fitted.predict(inputs.drop(columns="frequency"))
    with pytest.raises(ValueError, match="spend: must be non-negative"):
        SpendModel().fit(inputs, -summary["holdout_spend"] - 1)


def test_metrics_on_a_known_case() -> None:
    churned = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 1])
    risk = np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.3, 0.2, 0.1, 0.05, 0.6])
    value = np.arange(1.0, 11.0)
    metrics = churn_metrics(churned, risk, value, probability=True)
    assert metrics["roc_auc"] == 1.0
    assert metrics["top_decile_lift"] == pytest.approx(1 / 0.4)
    assert metrics["top_decile_value_capture"] == pytest.approx(1 / (1 + 2 + 5 + 10))
    assert top_share(risk).sum() == 1
    assert value_metrics(np.array([0.0, 1, 2, 3]), np.array([0.0, 1, 2, 3]))["spearman"] == pytest.approx(1.0)


@pytest.mark.slow
def test_cdnow_master_against_the_strongest_baselines(tmp_path: Path) -> None:
    """CDNOW_master, calibration to 1997-09-30, 39-week holdout, ours scored out of fold at the same
    cutoff (the flattering view; ``crm evaluate`` adds the out-of-time one). The published lifetimes
    bars: ROC AUC .769 (churn) and Spearman .44 (holdout spend). The strongest label-free baseline here
    is Pareto/NBD's expected purchases, within a bootstrap interval of ours: the honest margin is nil."""
    features = cdnow_features("master", tmp_path)
    churn = evaluate_churn(features, HOLDOUT_DAYS, "weeks", bootstrap_samples=200).report
    value = evaluate_clv(features, HOLDOUT_DAYS, "weeks").report["value"]

    assert churn["customers"] == 23_570
    ours = churn["metrics"]["ours"]
    assert ours["roc_auc"] > 0.769
    assert ours["brier"] < 0.17
    assert churn["best_baseline"] == "pareto_expected_purchases"
    assert churn["metrics"]["pareto_expected_purchases"]["roc_auc"] == pytest.approx(0.7687, abs=0.0005)
    low, high = churn["margin_roc_auc_interval"]
    assert low < 0 < high  # ours and the best baseline are not told apart
    best_value = max(v["spearman"] for v in value.values())
    assert best_value > 0.44
    assert value["supervised"]["spearman"] > value["btyd_gamma_gamma"]["spearman"]


def test_the_bootstrap_redraws_one_class_resamples_and_needs_both_classes() -> None:
    labels = np.array([True] + [False] * 9)  # one churner in ten: many resamples hold none
    ours, other = np.linspace(1, 0, 10), np.linspace(0, 1, 10)
    margin = bootstrap_difference(labels, ours, other, samples=200, seed=1)
    assert margin["difference"] == pytest.approx(1.0)  # ours ranks the churner first, other last
    assert margin["low"] <= margin["difference"] <= margin["high"]
    with pytest.raises(ValueError, match="both churners and buyers"):
        bootstrap_difference(np.zeros(10, dtype=bool), ours, other)
