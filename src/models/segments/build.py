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
from crm_analytics.models.segments.membership import write_memberships
from crm_analytics.models.segments.profiles import profile_plot, segment_profile
from crm_analytics.models.segments.rfm import RFMSegmenter
from crm_analytics.models.segments.value_risk import ValueRiskSegmenter
from crm_analytics.models.train import CHURN_NAME, CLV_NAME, log_and_register, quantile_example
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure, use_experiment

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
    # the champion's own CLVModel: its pyfunc would also simulate intervals these scores do not use
    clv = models[CLV_NAME][1].unwrap_python_model().model.clv(features[[*PATTERN, "monetary_value"]])
    churn = models[CHURN_NAME][1].predict(model_inputs(features).reset_index(drop=True))
    scores = pd.DataFrame(
        {"clv": clv, "churn_probability": churn["churn_probability"].to_numpy()},
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
    # every family is fitted before anything is registered or stored, the memberships are replaced in
    # one transaction and the aliases move last: a failure never leaves families from two builds
    fitted = [_fit_family(family, features, scores, seed, status) for family in families]
    registered = [_register(built, as_of, seed, len(features)) for built in fitted]
    members = [
        (
            built.family.name,
            pd.DataFrame(
                {
                    "customer_id": features.index.to_numpy(),
                    "segment": built.segments.to_numpy(),
                    "clv": scores["clv"].to_numpy(),
                    "churn_probability": scores["churn_probability"].to_numpy(),
                }
            ),
            f"{REGISTERED[built.family.name]}/{version}",
        )
        for built, version in zip(fitted, registered, strict=True)
    ]
    write_memberships(warehouse, members, as_of)
    client = mlflow.tracking.MlflowClient()
    result: dict[str, Any] = {"as_of": str(as_of), "scored_with": scores.attrs["versions"], "families": {}}
    for built, version in zip(fitted, registered, strict=True):
        name = REGISTERED[built.family.name]
        client.set_registered_model_alias(name, CHAMPION, version)
        result["families"][built.family.name] = {
            "model": name,
            "version": version,
            "segments": built.profile["customers"].to_dict(),
            **{k: v for k, v in built.metrics.items() if k != "segments"},
        }
    return result


@dataclass
class FittedFamily:
    family: Family
    segmenter: Any
    segments: pd.Series
    profile: pd.DataFrame
    metrics: dict[str, float]


def _fit_family(
    family: Family, features: pd.DataFrame, scores: pd.DataFrame, seed: int, status: Callable[[str], None]
) -> FittedFamily:
    status(f"building {family.name} segments")
    segmenter = family.segmenter.fit(family.inputs)
    segments = segmenter.transform(family.inputs)[family.column]
    metrics = {"segments": float(segments.nunique())}
    if isinstance(segmenter, BehaviourClusters):
        stability = segmenter.stability(family.inputs, n_bootstrap=STABILITY_BOOTSTRAPS, seed=seed)
        metrics |= {"stability_ari_mean": stability["mean"], "stability_ari_min": stability["min"]}
    return FittedFamily(family, segmenter, segments, segment_profile(features, scores, segments), metrics)


def _register(built: FittedFamily, as_of: date, seed: int, customers: int) -> str:
    """Log the definition, profile and plot, and register the segmenter; returns the new version."""
    name = REGISTERED[built.family.name]
    with mlflow.start_run(run_name=name):
        mlflow.log_params(
            {"family": built.family.name, "as_of": str(as_of), "customers": customers, "seed": seed}
        )
        mlflow.log_dict(built.segmenter.definition(), "definition.json")
        mlflow.log_text(built.profile.to_csv(), "profile.csv")
        mlflow.log_metrics(built.metrics)
        log_figures({"profile": profile_plot(built.profile, f"{name}: segments as of {as_of}")})
        inputs = built.family.inputs
        example = quantile_example(inputs[built.segmenter.columns_])
        return log_and_register(SegmentPyfunc(built.segmenter, built.family.column), example, name)
