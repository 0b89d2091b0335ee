"""Train, evaluate, log and register the CLV and churn models in MLflow.

Each run logs the config, the fitted parameters, holdout metrics, the feature table's schema and content
hash (never its rows), and the model as a pyfunc with a signature and an input example made of feature
quantiles (no real customer's row). The model is registered as ``crm-clv`` or ``crm-churn``; the
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
from crm_analytics.models.churn import ChurnModel, btyd_features, out_of_fold_churn
from crm_analytics.models.clv import PATTERN, CLVModel
from crm_analytics.models.evaluate import churn_metrics, value_metrics
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.pyfunc import ChurnPyfunc, CLVPyfunc
from crm_analytics.models.tracking import configure, feature_fingerprint, use_experiment
from crm_analytics.settings import Settings

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
    return features.set_index("customer_id") if "customer_id" in features.columns else features


def _example(frame: pd.DataFrame) -> pd.DataFrame:
    """Three synthetic rows (the 25th, 50th and 75th percentile of every column): no real customer."""
    numeric = frame.select_dtypes("number")
    return numeric.quantile([0.25, 0.5, 0.75]).reset_index(drop=True)


def _holdout_tag(features: pd.DataFrame, horizon_days: int, fingerprint: dict[str, str]) -> str:
    as_of = pd.Timestamp(features["as_of"].iloc[0]).date()
    return f"{as_of}+{horizon_days}d:{fingerprint['content_sha256'][:16]}"


@contextmanager
def _training_run(
    settings: Settings, name: str, features: pd.DataFrame, horizon_days: int, time_unit: str, seed: int
) -> Iterator[tuple[Any, str]]:
    """An MLflow run in the model's experiment with what every run logs; yields (run, holdout tag)."""
    configure(settings)
    use_experiment(settings, name)
    fingerprint = feature_fingerprint(features.reset_index())
    holdout = _holdout_tag(features, horizon_days, fingerprint)
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(
            {"horizon_days": horizon_days, "time_unit": time_unit, "seed": seed, "customers": len(features)}
        )
        mlflow.set_tags({"holdout": holdout, "feature_content_sha256": fingerprint["content_sha256"]})
        mlflow.log_dict(json.loads(fingerprint["schema"]), "feature_schema.json")
        yield run, holdout


def _log_and_register(python_model: PythonModel, example: pd.DataFrame, name: str) -> str:
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
    settings: Settings, features: pd.DataFrame, horizon_days: int, time_unit: str = "weeks", seed: int = 0
) -> TrainResult:
    """Fit the BTYD + Gamma-Gamma model on the calibration summary; score it on the holdout spend."""
    features = _prepare(features)
    horizon = horizon_days / DAYS_PER_UNIT[time_unit]
    with _training_run(settings, CLV_NAME, features, horizon_days, time_unit, seed) as (run, holdout):
        model = CLVModel(time_unit=time_unit).fit(features)
        expected = model.expected_purchases(features, horizon) * model.expected_spend(features)
        spend = features["holdout_spend"].to_numpy(float)
        metrics = {f"holdout_{k}": v for k, v in value_metrics(spend, expected).items()}
        metrics |= {
            "log_likelihood": model.log_likelihood(),
            "spend_excluded": float(model.spend_excluded_.count),
        }
        mlflow.log_params({f"param_{k}": round(v, 6) for k, v in model.params_.items()})
        mlflow.log_params(
            {"purchase_model": model.purchase_model, "retried": ";".join(model.retried_) or "no"}
        )
        mlflow.log_metrics(metrics)
        version = _log_and_register(
            CLVPyfunc(model, horizon), _example(features[[*PATTERN, "monetary_value"]]), CLV_NAME
        )
    return TrainResult(CLV_NAME, version, run.info.run_id, holdout, metrics)


def train_churn(
    settings: Settings, features: pd.DataFrame, horizon_days: int, time_unit: str = "weeks", seed: int = 0
) -> TrainResult:
    """Fit the churn classifier on all customers; its metrics are out of fold on the same cutoff."""
    features = _prepare(features)
    horizon = horizon_days / DAYS_PER_UNIT[time_unit]
    with _training_run(settings, CHURN_NAME, features, horizon_days, time_unit, seed) as (run, holdout):
        clv_model = CLVModel(time_unit=time_unit).fit(features)
        inputs = model_inputs(features.join(btyd_features(clv_model, features, horizon)))
        churned = features["churned"].astype(bool)
        churn_model = ChurnModel(seed=seed)
        predicted = out_of_fold_churn(churn_model, inputs, churned)
        metrics = churn_metrics(churned.to_numpy(), predicted, features["spend_total"].to_numpy(float), True)
        mlflow.log_params({k: v for k, v in vars(churn_model).items() if not k.endswith("_")})
        mlflow.log_metrics(metrics)
        churn_model.fit(inputs, churned)
        version = _log_and_register(
            ChurnPyfunc(clv_model, churn_model, horizon), _example(model_inputs(features)), CHURN_NAME
        )
    return TrainResult(CHURN_NAME, version, run.info.run_id, holdout, metrics)
