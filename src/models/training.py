"""What every training run shares: reading a labelled build, the MLflow run, logging and registering.

Each run logs the config, holdout metrics with the baselines', the evaluation report and its plots
(aggregates only), the feature table's schema and content hash (never its rows), and the model as a
pyfunc with a signature and an input example made of feature quantiles (no real customer's row). The
``holdout`` tag names the split the metrics come from; the promotion gate compares it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, NamedTuple

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

from crm_analytics.errors import NotReadyError
from crm_analytics.features.store import build_record, read_features
from crm_analytics.models.clv.evaluation import by_customer
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure, feature_fingerprint, use_experiment
from crm_analytics.warehouse import Warehouse

# Declared rather than inferred: inference loads the model in a subprocess, slow and no more precise.
# Serving runs where crm-analytics itself is installed (the models' classes live in it).
PIP_REQUIREMENTS = ["lifetimes==0.11.3", "scikit-learn>=1.9", "pandas>=3.1", "numpy>=2.4", "scipy>=1.17"]


class LabelledBuild(NamedTuple):
    features: pd.DataFrame
    horizon_days: int
    time_unit: str


def labelled_build(warehouse: Warehouse, as_of: date) -> LabelledBuild:
    """The stored feature build at ``as_of`` with its horizon and time unit; a LookupError when there is
    none or it has no labels."""
    config = build_record(warehouse, as_of)["config"]
    if config["horizon_days"] is None:
        raise NotReadyError(f"as_of: the build for {as_of} has no labels; rebuild it with --horizon-days")
    return LabelledBuild(read_features(warehouse, as_of), config["horizon_days"], config["time_unit"])


def prepare(features: pd.DataFrame) -> pd.DataFrame:
    """The labelled feature table indexed by customer; names a missing label column."""
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


def holdout_tag(
    features: pd.DataFrame, horizon_days: int, fingerprint: dict[str, str], validation: str
) -> str:
    """Cutoff, horizon, feature content and how the model was validated: what makes metrics comparable."""
    as_of = pd.Timestamp(features["as_of"].iloc[0]).date()
    return f"{as_of}+{horizon_days}d:{fingerprint['content_sha256'][:16]}:{validation}"


class HoldoutTag(NamedTuple):
    """What a ``holdout_tag`` names: the cutoff, the feature content prefix and how it was validated."""

    cutoff: date
    content: str
    validation: str

    @classmethod
    def parse(cls, tag: str) -> HoldoutTag:
        """A ValueError for a tag training did not write."""
        try:
            cutoff, rest = tag.split("+", 1)
            _, content, validation = rest.split(":", 2)
            return cls(date.fromisoformat(cutoff), content, validation)
        except ValueError:
            raise ValueError(f"holdout tag {tag!r}: not one training wrote") from None


@contextmanager
def training_run(
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
    holdout = holdout_tag(features, horizon_days, fingerprint, validation)
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
