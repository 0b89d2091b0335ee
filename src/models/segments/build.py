"""Build the segments: fit each family, register its definition in MLflow, store the membership.

What ``crm segments build`` runs. Three families, each registered as its own model whose versions are
the versioned definitions (``@champion`` points at the one in use; a segmentation has no holdout to
gate on, so every build becomes current):

- ``rfm`` (``crm-segments-rfm``): RFM quintile scores and named segments;
- ``value_risk`` (``crm-segments-value-risk``): the CLV and churn champions' scores in four quadrants;
- ``behaviour`` (``crm-segments-behaviour``): behavioural clusters, with their bootstrap stability.

Each run logs the definition (``definition.json``), the profile table and bubble plot (aggregates
only) and a pyfunc with a synthetic input example; no customer's data goes to MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from crm_analytics.ingest.warehouse import Warehouse
from crm_analytics.models.clv import PATTERN
from crm_analytics.models.clv_evaluation import by_customer
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.plots import log_figures
from crm_analytics.models.registry import CHAMPION
from crm_analytics.models.segments.clusters import BehaviourClusters
from crm_analytics.models.segments.membership import write_membership
from crm_analytics.models.segments.profiles import profile_plot, segment_profile
from crm_analytics.models.segments.rfm import COLUMNS as RFM_COLUMNS
from crm_analytics.models.segments.rfm import RFMSegmenter
from crm_analytics.models.segments.value_risk import INPUT_COLUMNS as VALUE_RISK_INPUTS
from crm_analytics.models.segments.value_risk import ValueRiskSegmenter
from crm_analytics.models.tracking import configure, use_experiment
from crm_analytics.models.train import CHURN_NAME, CLV_NAME, log_and_register, quantile_example
from crm_analytics.settings import Settings

EXPERIMENT = "crm-segments"
REGISTERED = {
    "rfm": "crm-segments-rfm",
    "value_risk": "crm-segments-value-risk",
    "behaviour": "crm-segments-behaviour",
}
STABILITY_BOOTSTRAPS = 10


class SegmentPyfunc(PythonModel):
    """A fitted segmenter as a pyfunc: its input columns in, one ``segment`` column out."""

    def __init__(self, segmenter: Any, column: str) -> None:
        self.segmenter = segmenter
        self.column = column

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        segments = self.segmenter.transform(model_input)[self.column]
        return pd.DataFrame({"segment": segments.to_numpy()})


@dataclass(frozen=True)
class Family:
    name: str
    segmenter: Any
    column: str  # the segmenter's output column with the segment name
    inputs: pd.DataFrame  # what it is fitted on and what its pyfunc reads


def champion_scores(settings: Settings, features: pd.DataFrame) -> pd.DataFrame:
    """CLV and P(churn) per customer from the ``@champion`` models (what value-risk segments and export
    filters read); a missing champion is a LookupError that says what to run."""
    client = configure(settings)
    models = {}
    for name in (CLV_NAME, CHURN_NAME):
        try:
            version = client.get_model_version_by_alias(name, CHAMPION)
        except mlflow.exceptions.MlflowException:
            raise LookupError(f"{name}: no @{CHAMPION}; run `crm train` and `crm promote` first") from None
        models[name] = (version.version, mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}"))
    clv = models[CLV_NAME][1].predict(features[[*PATTERN, "monetary_value"]].reset_index(drop=True))
    churn = models[CHURN_NAME][1].predict(model_inputs(features).reset_index(drop=True))
    scores = pd.DataFrame(
        {"clv": clv["clv"].to_numpy(), "churn_probability": churn["churn_probability"].to_numpy()},
        index=features.index,
    )
    scores.attrs["versions"] = {name: str(v) for name, (v, _) in models.items()}
    return scores


def build_segments(
    settings: Settings,
    warehouse: Warehouse,
    features: pd.DataFrame,
    as_of: date,
    seed: int = 0,
    status: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Fit, register and store every family on the feature table of ``as_of``; returns what was built."""
    features = by_customer(features)
    status("scoring with the CLV and churn champions")
    scores = champion_scores(settings, features)
    families = [
        Family("rfm", RFMSegmenter(), "rfm_segment", features),
        Family("value_risk", ValueRiskSegmenter(), "value_risk_segment", scores),
        Family("behaviour", BehaviourClusters(seed=seed), "cluster_name", features),
    ]
    use_experiment(settings, EXPERIMENT)
    built: dict[str, Any] = {"as_of": str(as_of), "scored_with": scores.attrs["versions"], "families": {}}
    for family in families:
        status(f"building {family.name} segments")
        built["families"][family.name] = _build_family(warehouse, family, features, scores, as_of, seed)
    return built


def _build_family(
    warehouse: Warehouse,
    family: Family,
    features: pd.DataFrame,
    scores: pd.DataFrame,
    as_of: date,
    seed: int,
) -> dict[str, Any]:
    name = REGISTERED[family.name]
    segmenter = family.segmenter.fit(family.inputs)
    segments = segmenter.transform(family.inputs)[family.column]
    profile = segment_profile(features, scores, segments)
    with mlflow.start_run(run_name=name):
        mlflow.log_params(
            {"family": family.name, "as_of": str(as_of), "customers": len(features), "seed": seed}
        )
        mlflow.log_dict(segmenter.definition(), "definition.json")
        mlflow.log_text(profile.to_csv(), "profile.csv")
        metrics = {"segments": float(len(profile))}
        if isinstance(segmenter, BehaviourClusters):
            stability = segmenter.stability(family.inputs, n_bootstrap=STABILITY_BOOTSTRAPS, seed=seed)
            metrics |= {"stability_ari_mean": stability["mean"], "stability_ari_min": stability["min"]}
        mlflow.log_metrics(metrics)
        log_figures({"profile": profile_plot(profile, f"{name}: segments as of {as_of}")})
        example = quantile_example(family.inputs[_input_columns(segmenter, family.inputs)])
        version = log_and_register(SegmentPyfunc(segmenter, family.column), example, name)
    mlflow.tracking.MlflowClient().set_registered_model_alias(name, CHAMPION, version)
    members = pd.DataFrame(
        {
            "customer_id": features.index.to_numpy(),
            "segment": segments.to_numpy(),
            "clv": scores["clv"].to_numpy(),
            "churn_probability": scores["churn_probability"].to_numpy(),
        }
    )
    write_membership(warehouse, family.name, members, f"{name}/{version}", as_of)
    return {
        "model": name,
        "version": version,
        "segments": profile["customers"].to_dict(),
        **{k: v for k, v in metrics.items() if k != "segments"},
    }


def _input_columns(segmenter: Any, inputs: pd.DataFrame) -> list[str]:
    """The columns a fitted segmenter reads: what its pyfunc's input example holds."""
    if isinstance(segmenter, RFMSegmenter):
        return list(RFM_COLUMNS.values())
    if isinstance(segmenter, ValueRiskSegmenter):
        return list(VALUE_RISK_INPUTS)
    return list(segmenter.columns_)
