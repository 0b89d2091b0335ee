"""Train, evaluate, log and register the CLV and churn models in MLflow.

Each run logs the config, the fitted parameters, holdout metrics with the baselines', the evaluation
report and its plots (aggregates only), the feature table's schema and content hash (never its rows),
and the model as a pyfunc with a signature and an input example made of feature quantiles (no real
customer's row). The model is registered as ``crm-clv`` or ``crm-churn``; the
``holdout`` tag names the split the metrics come from, which the promotion gate compares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

from crm_analytics.features.rfm import DAYS_PER_UNIT
from crm_analytics.models.churn import ChurnModel, btyd_features
from crm_analytics.models.clv import PATTERN
from crm_analytics.models.clv_evaluation import by_customer, evaluate_clv
from crm_analytics.models.evaluation_plots import churn_figures, clv_figures
from crm_analytics.models.holdout import BASELINES, evaluate_churn
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.plots import log_figures
from crm_analytics.models.pyfunc import ChurnPyfunc, CLVPyfunc
from crm_analytics.models.tracking import feature_fingerprint
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure, use_experiment

CLV_NAME, CHURN_NAME = "crm-clv", "crm-churn"
# Declared rather than inferred: inference loads the model in a subprocess, slow and no more precise.
# Serving runs where crm-analytics itself is installed (the models' classes live in it).
PIP_REQUIREMENTS = ["lifetimes==0.11.3", "scikit-learn>=1.9", "pandas>=3.1", "numpy>=2.4", "scipy>=1.17"]


@dataclass(frozen=True)
class TrainResult:
    model: str
    version: str
    run_id: str
    holdout: str
    metrics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prepare(features: pd.DataFrame) -> pd.DataFrame:
    for column in ("churned", "holdout_spend", "as_of"):
        if column not in features.columns:
            raise ValueError(f"missing column '{column}': build features with --horizon-days to get labels")
    return by_customer(features)


def quantile_example(frame: pd.DataFrame) -> pd.DataFrame:
    """Three synthetic rows (the 25th, 50th and 75th percentile of every column): no real customer.

    Each quantile is an observed value (``nearest``), so counts stay whole numbers and, because one row
    takes the same rank in every column, recency never exceeds T."""
    numeric = frame.select_dtypes("number")
    return numeric.quantile([0.25, 0.5, 0.75], interpolation="nearest").reset_index(drop=True)


def _holdout_tag(
    features: pd.DataFrame, horizon_days: int, fingerprint: dict[str, str], validation: str
) -> str:
    """Cutoff, horizon, feature content and how the model was validated: what makes metrics comparable."""
    as_of = pd.Timestamp(features["as_of"].iloc[0]).date()
    return f"{as_of}+{horizon_days}d:{fingerprint['content_sha256'][:16]}:{validation}"


@contextmanager
def _training_run(
    settings: Settings,
    name: str,
    features: pd.DataFrame,
    horizon_days: int,
    time_unit: str,
    seed: int,
    validation: str = "holdout",
) -> Iterator[tuple[Any, str]]:
    """An MLflow run in the model's experiment with what every run logs; yields (run, holdout tag)."""
    configure(settings)
    use_experiment(settings, name)
    fingerprint = feature_fingerprint(features.reset_index())
    holdout = _holdout_tag(features, horizon_days, fingerprint, validation)
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(
            {"horizon_days": horizon_days, "time_unit": time_unit, "seed": seed, "customers": len(features)}
        )
        mlflow.set_tags({"holdout": holdout, "feature_content_sha256": fingerprint["content_sha256"]})
        mlflow.log_dict(json.loads(fingerprint["schema"]), "feature_schema.json")
        yield run, holdout


def log_and_register(python_model: PythonModel, example: pd.DataFrame, name: str) -> str:
    """Log the pyfunc with its signature and input example, register it; returns the new version."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        signature=infer_signature(example, python_model.predict(None, example)),
        input_example=example,
        pip_requirements=PIP_REQUIREMENTS,
        registered_model_name=name,
    )
    return str(info.registered_model_version)


def train_clv(
    settings: Settings,
    features: pd.DataFrame,
    horizon_days: int,
    time_unit: str = "weeks",
    seed: int = 0,
    daily: pd.DataFrame | None = None,
) -> TrainResult:
    """Fit every purchase model on the calibration summary, keep the one with the lowest holdout error.

    ``daily`` (repeat purchases per day, ``features.tracking``) adds the weekly tracking plot.
    """
    features = _prepare(features)
    with _training_run(settings, CLV_NAME, features, horizon_days, time_unit, seed) as (run, holdout):
        evaluation = evaluate_clv(features, horizon_days, time_unit, daily=daily, seed=seed)
        model = evaluation.models[evaluation.selected]
        report = evaluation.report
        value = report["value"]
        metrics = {f"holdout_{k}": v for k, v in value["btyd_gamma_gamma"].items()}
        metrics |= {f"supervised_holdout_{k}": v for k, v in value["supervised"].items()}
        metrics["spend_excluded"] = float(model.spend_excluded_.count)
        for name, errors in report["purchase_models"].items():
            metrics |= {f"{name}_{k}": v for k, v in errors.items() if k != "params"}
        mlflow.log_params({f"param_{k}": round(v, 6) for k, v in model.params_.items()})
        mlflow.log_params(
            {
                "purchase_model": model.purchase_model,
                "selected_by": report["selection_metric"],
                "retried": ";".join(model.retried_) or "no",
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, "evaluation.json")
        log_figures(clv_figures(evaluation, features))
        horizon = horizon_days / DAYS_PER_UNIT[time_unit]
        version = log_and_register(
            CLVPyfunc(model, horizon), quantile_example(features[[*PATTERN, "monetary_value"]]), CLV_NAME
        )
    return TrainResult(CLV_NAME, version, run.info.run_id, holdout, metrics)


def train_churn(
    settings: Settings,
    features: pd.DataFrame,
    horizon_days: int,
    time_unit: str = "weeks",
    seed: int = 0,
    earlier: pd.DataFrame | None = None,
) -> TrainResult:
    """Fit the churn classifier on all customers at this cutoff.

    Its metrics come from a model trained on ``earlier`` (a labelled table at as_of - horizon) and
    tested here when given, otherwise out of fold at this cutoff; the baselines on the same rows.
    """
    features = _prepare(features)
    horizon = horizon_days / DAYS_PER_UNIT[time_unit]
    validation = "oof" if earlier is None else f"from-{pd.Timestamp(earlier['as_of'].iloc[0]).date()}"
    with _training_run(settings, CHURN_NAME, features, horizon_days, time_unit, seed, validation) as (
        run,
        holdout,
    ):
        evaluation = evaluate_churn(features, horizon_days, time_unit, seed, train_features=earlier)
        report = evaluation.report
        metrics = dict(report["metrics"]["ours"])
        for baseline in BASELINES:
            metrics |= {f"{baseline}_{k}": v for k, v in report["metrics"][baseline].items()}
        metrics["margin_roc_auc"] = report["margin_roc_auc"]
        churn_model = ChurnModel(seed=seed)
        mlflow.log_params({k: v for k, v in vars(churn_model).items() if not k.endswith("_")})
        mlflow.log_params({"validation": report["validation"]})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, "evaluation.json")
        log_figures(churn_figures(evaluation))
        clv_model = evaluation.btyd  # the BG/NBD the evaluation fitted on these customers
        inputs = model_inputs(features.join(btyd_features(clv_model, features, horizon)))
        churn_model.fit(inputs, features["churned"].astype(bool))
        version = log_and_register(
            ChurnPyfunc(clv_model, churn_model, horizon), quantile_example(model_inputs(features)), CHURN_NAME
        )
    return TrainResult(CHURN_NAME, version, run.info.run_id, holdout, metrics)
