"""The churn family (``crm-churn``): P(no purchase in the horizon) from the calibrated classifier over the
feature table and the BG/NBD view of each customer; gated on ROC AUC."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from sklearn.metrics import brier_score_loss, roc_auc_score

from crm_analytics.features.rfm import DAYS_PER_UNIT
from crm_analytics.features.store import build_record, has_labelled_build, read_features
from crm_analytics.models.churn.evaluation import evaluate_churn, our_scores
from crm_analytics.models.churn.model import ChurnModel, btyd_features
from crm_analytics.models.clv.evaluation import by_customer
from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.evaluation_plots import churn_figures
from crm_analytics.models.family import Gate, ModelFamily, TrainRequest, TrainResult, predict_by_customer
from crm_analytics.models.gate_evidence import Guard
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.metrics import top_decile_lift
from crm_analytics.models.plots import log_figures
from crm_analytics.models.training import (
    HoldoutTag,
    labelled_build,
    log_and_register,
    prepare,
    quantile_example,
    training_run,
)
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse

NAME = "crm-churn"


class ChurnPyfunc(PythonModel):
    """Input: a feature table's rows (no ids needed). Output: P(churn) over the training horizon."""

    def __init__(self, clv_model: CLVModel, churn_model: ChurnModel, horizon_periods: float) -> None:
        self.clv_model = clv_model
        self.churn_model = churn_model
        self.horizon_periods = horizon_periods

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        btyd = btyd_features(self.clv_model, model_input, self.horizon_periods)
        inputs = model_inputs(
            pd.concat([model_input.reset_index(drop=True), btyd.reset_index(drop=True)], axis=1)
        )
        return pd.DataFrame({"churn_probability": self.churn_model.predict_proba(inputs)})


def train_churn(
    settings: Settings,
    features: pd.DataFrame,
    horizon_days: int,
    time_unit: str = "weeks",
    seed: int = 0,
    earlier: pd.DataFrame | None = None,
) -> TrainResult:
    """Fit the churn classifier on all customers at this cutoff; log and register it.

    Its metrics come from a model trained on ``earlier`` (a labelled table at as_of - horizon) and
    tested here when given, otherwise out of fold at this cutoff; the baselines on the same rows.
    """
    features = prepare(features)
    horizon = horizon_days / DAYS_PER_UNIT[time_unit]
    validation = "oof" if earlier is None else f"from-{pd.Timestamp(earlier['as_of'].iloc[0]).date()}"
    with training_run(settings, NAME, features, horizon_days, time_unit, seed, validation) as (run, holdout):
        evaluation = evaluate_churn(  # 200 resamples: the interval's ends to about .001, in a second
            features, horizon_days, time_unit, seed, train_features=earlier, bootstrap_samples=200
        )
        report = evaluation.report
        metrics = dict(report["metrics"]["ours"])
        for baseline, figures in report["metrics"].items():
            if baseline != "ours":
                metrics |= {f"{baseline}_{k}": v for k, v in figures.items()}
        metrics["margin_roc_auc"] = report["margin_roc_auc"]
        metrics["margin_roc_auc_low"], metrics["margin_roc_auc_high"] = report["margin_roc_auc_interval"]
        churn_model = ChurnModel(seed=seed)
        mlflow.log_params(churn_model.get_params())
        mlflow.log_params({"validation": report["validation"], "best_baseline": report["best_baseline"]})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, "evaluation.json")
        log_figures(churn_figures(evaluation))
        clv_model = evaluation.btyd  # the BG/NBD the evaluation fitted on these customers
        inputs = model_inputs(features.join(btyd_features(clv_model, features, horizon)))
        churn_model.fit(inputs, features["churned"].astype(bool))
        example = quantile_example(model_inputs(features))
        version = log_and_register(ChurnPyfunc(clv_model, churn_model, horizon), example, NAME)
    return TrainResult(NAME, version, run.info.run_id, holdout, metrics)


def train(request: TrainRequest) -> TrainResult:
    """Train on the stored labelled build at ``as_of``; validated on it by a model trained on the build
    one horizon earlier when that exists with the same horizon and unit."""
    build = labelled_build(request.warehouse, request.as_of)
    earlier_as_of = request.as_of - timedelta(days=build.horizon_days)
    earlier = _earlier_build(request.warehouse, earlier_as_of, build.horizon_days, build.time_unit)
    return train_churn(
        request.settings, build.features, build.horizon_days, build.time_unit, request.seed, earlier
    )


def _earlier_build(
    warehouse: Warehouse, as_of: date, horizon_days: int, time_unit: str
) -> pd.DataFrame | None:
    """The stored labelled build at ``as_of`` with the same horizon and unit, or None."""
    if not has_labelled_build(warehouse, as_of, horizon_days, time_unit):
        return None
    return read_features(warehouse, as_of)


def score(model: Any, features: pd.DataFrame) -> pd.DataFrame:
    """The churn champion's probability for feature rows indexed by customer id."""
    return predict_by_customer(model, model_inputs(features.reset_index(drop=True)), features.index)


def out_of_time_scores(
    pyfunc: ChurnPyfunc, warehouse: Warehouse, features: pd.DataFrame, holdout: str
) -> np.ndarray:
    """The promotion gate's scores for a version: its configuration refitted as its training validated
    it (the ``holdout`` tag says how: ``from-DAY``, on that stored build, or ``oof``, out of fold), so
    neither version has seen these labels (the registered model itself was fitted on them). A
    LookupError when that earlier build is gone or no longer has the same horizon."""
    cutoff = pd.Timestamp(features["as_of"].iloc[0]).date()
    config = build_record(warehouse, cutoff)["config"]
    horizon_days, time_unit = config["horizon_days"], config["time_unit"]
    validation = HoldoutTag.parse(holdout).validation
    earlier = None
    if validation.startswith("from-"):
        day = date.fromisoformat(validation.removeprefix("from-"))
        earlier = _earlier_build(warehouse, day, horizon_days, time_unit)
        if earlier is None:
            raise LookupError(f"the build at {day} these versions were validated on is gone or rebuilt")
        earlier = by_customer(earlier)
    horizon = horizon_days / DAYS_PER_UNIT[time_unit]
    btyd = CLVModel(time_unit=time_unit).fit(features)
    return our_scores(features, horizon, btyd, train_features=earlier, template=pyfunc.churn_model)


FAMILY = ModelFamily(
    key="churn",
    name=NAME,
    summary="P(no purchase in the horizon): calibrated gradient boosting over features and BG/NBD",
    pyfunc=ChurnPyfunc,
    train=train,
    gate=Gate(
        "roc_auc",
        label="churned",
        comparison=lambda loaded, warehouse, features, tag: out_of_time_scores(
            loaded.unwrap_python_model(), warehouse, features, tag
        ),
        statistic=roc_auc_score,
        guards=(
            Guard("brier", brier_score_loss, tolerance=0.002, higher_is_better=False),
            Guard("top_decile_lift", top_decile_lift, tolerance=0.05),
        ),
        min_gain_setting="gate_min_gain_churn",
    ),
    score=score,
    outputs={"churn_probability": "double"},
    served=True,
)
