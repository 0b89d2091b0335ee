"""Build the segments: fit each segment family, register its definition in MLflow, store the membership.

The families come from the registry (``registry.segmentations``): RFM on the feature table, value and
risk on the CLV and churn champions' scores, behavioural clusters (checked on two halves of the
customers: below ``CRM_SEGMENTS_MIN_SPLIT_HALF_ARI`` they are not registered, and the previous
clustering's membership, if any, stays). Each run
logs the definition (``definition.json``), the profile table and bubble plot (aggregates only) and a
pyfunc with a synthetic input example; no customer's data goes to MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import mlflow
import pandas as pd

from crm_analytics.features.rfm import BTYD_COLUMNS
from crm_analytics.models import registry
from crm_analytics.models.churn.family import FAMILY as CHURN
from crm_analytics.models.clv.evaluation import by_customer
from crm_analytics.models.clv.family import FAMILY as CLV
from crm_analytics.models.family import ModelFamily
from crm_analytics.models.gate import champion_version, load_champions, promote
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.plots import log_figures
from crm_analytics.models.segments.family import SegmentPyfunc
from crm_analytics.models.segments.membership import write_memberships
from crm_analytics.models.segments.profiles import profile_plot, segment_profile
from crm_analytics.models.training import log_and_register, quantile_example
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure, use_experiment
from crm_analytics.warehouse import Warehouse

EXPERIMENT = "crm-segments"
log = logging.getLogger(__name__)


def champion_scores(settings: Settings, features: pd.DataFrame) -> pd.DataFrame:
    """CLV and P(churn) per customer from the ``@champion`` models (what value-risk segments and export
    filters read); a missing champion is a LookupError that says what to run."""
    client = configure(settings)
    versions, loaded = load_champions(client, (CLV, CHURN))
    # the champion's own CLVModel: its pyfunc would also simulate intervals these scores do not use
    clv = loaded[CLV.name].unwrap_python_model().model.clv(features[list(BTYD_COLUMNS)])
    churn = loaded[CHURN.name].predict(model_inputs(features).reset_index(drop=True))
    scores = pd.DataFrame(
        {"clv": clv, "churn_probability": churn["churn_probability"].to_numpy()},
        index=features.index,
    )
    scores.attrs["versions"] = {name: v for name, (v, _) in versions.items()}
    return scores


@dataclass
class FittedFamily:
    family: ModelFamily
    segmenter: Any
    inputs: pd.DataFrame
    segments: pd.Series
    profile: pd.DataFrame
    metrics: dict[str, float]


def build_segments(
    settings: Settings,
    warehouse: Warehouse,
    features: pd.DataFrame,
    as_of: date,
    seed: int = 0,
    status: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Fit, register and store every segment family on the feature table of ``as_of``."""
    features = by_customer(features)
    status("scoring with the CLV and churn champions")
    scores = champion_scores(settings, features)
    use_experiment(settings, EXPERIMENT)
    # every family is fitted before anything is registered or stored, the memberships are replaced in
    # one transaction and the aliases move last: a failure never leaves families from two builds
    fitted = [_fit(item, features, scores, seed, status) for item in registry.segmentations()]
    client = configure(settings)
    refused = {
        built.family.key: f"{why}; {_what_stays(client, built.family)}"
        for built in fitted
        if (why := _unstable(built, settings))
    }
    for key, why in refused.items():
        log.warning("%s segments not registered: %s", key, why)
        status(f"{key} segments not registered: {why}")
    fitted = [built for built in fitted if built.family.key not in refused]
    registered = [_register(built, as_of, seed, len(features)) for built in fitted]
    members = [
        (
            built.family.key,
            pd.DataFrame(
                {
                    "customer_id": features.index.to_numpy(),
                    "segment": built.segments.to_numpy(),
                    "clv": scores["clv"].to_numpy(),
                    "churn_probability": scores["churn_probability"].to_numpy(),
                }
            ),
            f"{built.family.name}/{version}",
        )
        for built, version in zip(fitted, registered, strict=True)
    ]
    write_memberships(warehouse, members, as_of)
    client = mlflow.tracking.MlflowClient()
    result: dict[str, Any] = {"as_of": str(as_of), "scored_with": scores.attrs["versions"], "families": {}}
    for built, version in zip(fitted, registered, strict=True):
        promote(client, built.family.name, version)
        result["families"][built.family.key] = {
            "model": built.family.name,
            "version": version,
            "segments": built.profile["customers"].to_dict(),
            **{k: v for k, v in built.metrics.items() if k != "segments"},
        }
    for key, why in refused.items():
        result["families"][key] = {"refused": why}
    return result


def _unstable(built: FittedFamily, settings: Settings) -> str | None:
    """Why a clustering may not be registered (its split-half ARI under the Setting), or None."""
    ari = built.metrics.get("split_half_ari")
    if ari is None or ari >= settings.segments_min_split_half_ari:
        return None
    return (
        f"refitted on two halves of the customers (k {built.metrics['k_half_1']:.0f} and "
        f"{built.metrics['k_half_2']:.0f}) the clusters agree only {ari:.2f} (adjusted Rand index), under "
        f"CRM_SEGMENTS_MIN_SPLIT_HALF_ARI={settings.segments_min_split_half_ari:g}"
    )


def _what_stays(client: mlflow.tracking.MlflowClient, family: ModelFamily) -> str:
    if champion_version(client, family.name) is None:
        return f"no {family.key} segments until a build passes (more customers make steadier clusters)"
    return "the previous clustering stays in use"


def _fit(
    item: ModelFamily, features: pd.DataFrame, scores: pd.DataFrame, seed: int, status: Callable[[str], None]
) -> FittedFamily:
    assert item.segmentation is not None
    status(f"building {item.key} segments")
    inputs = scores if item.segmentation.fit_on == "scores" else features
    segmenter = item.segmentation.make(seed).fit(inputs)
    segments = segmenter.transform(inputs)[item.segmentation.column]
    metrics = {"segments": float(segments.nunique())}
    if item.segmentation.stability:
        status(f"checking the {item.key} segments' stability on two halves of the customers")
        check = segmenter.split_half_stability(inputs)
        metrics |= {"k": float(segmenter.k_), "split_half_ari": check["ari"]}
        metrics |= {"k_half_1": float(check["k_halves"][0]), "k_half_2": float(check["k_halves"][1])}
    profile = segment_profile(features, scores, segments)
    return FittedFamily(item, segmenter, inputs, segments, profile, metrics)


def _register(built: FittedFamily, as_of: date, seed: int, customers: int) -> str:
    """Log the definition, profile and plot, and register the segmenter; returns the new version."""
    name = built.family.name
    with mlflow.start_run(run_name=name):
        mlflow.log_params(
            {"family": built.family.key, "as_of": str(as_of), "customers": customers, "seed": seed}
        )
        mlflow.log_dict(built.segmenter.definition(), "definition.json")
        mlflow.log_text(built.profile.to_csv(), "profile.csv")
        mlflow.log_metrics(built.metrics)
        log_figures({"profile": profile_plot(built.profile, f"{name}: segments as of {as_of}")})
        example = quantile_example(built.inputs[built.segmenter.columns_])
        column = built.family.segmentation.column if built.family.segmentation else "segment"
        return log_and_register(SegmentPyfunc(built.segmenter, column), example, name)
