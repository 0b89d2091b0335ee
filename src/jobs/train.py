"""Train a model family on the warehouse, log and register it; promote a version through the gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException

from crm_analytics.errors import InvalidInputError
from crm_analytics.jobs import refresh
from crm_analytics.jobs.common import Progress, no_progress, open_warehouse
from crm_analytics.models import gate, registry
from crm_analytics.models.family import ModelFamily, TrainRequest, TrainResult
from crm_analytics.models.gate_evidence import Evidence, Judged, weigh
from crm_analytics.models.training import HoldoutTag, labelled_build, prepare
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure, feature_fingerprint


@dataclass(frozen=True)
class PromotionOutcome:
    """A promotion through the gate, or why the champion stayed."""

    model: str
    promoted: bool
    reason: str
    version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def train(
    settings: Settings,
    model: str,
    as_of: date,
    *,
    seed: int = 0,
    until: date | None = None,
    truth: Path | None = None,
) -> TrainResult:
    """Train ``model`` (a family's key or registered name) on the warehouse as of ``as_of`` (offers:
    the split, judged up to ``until``); log to MLflow and register a new version."""
    family = registry.family(model)
    if family.train is None:
        raise InvalidInputError(f"model: {family.key} is built with `crm segments build`, not trained alone")
    with open_warehouse(settings) as warehouse:
        return family.train(TrainRequest(settings, warehouse, as_of, seed, until, truth))


def promote(
    settings: Settings, model: str, version: str | None = None, force: bool = False, reason: str = ""
) -> gate.Promotion:
    """Move ``@champion`` to ``version`` (default: the newest) if it wins the gate, or when forced with a
    reason; a PromotionRefusedError says why not."""
    client = configure(settings)
    return gate.promote(
        client, registry.family(model).name, version, force, reason, warehouse_judge(settings)
    )


def _weigh_on_warehouse(settings: Settings, family: ModelFamily, candidate: Any, champion: Any) -> Evidence:
    rule = family.gate
    if rule is None or not (rule.statistic and rule.comparison and rule.label):
        raise ValueError(f"{family.name}: its gate compares logged metrics, not scores")
    client = configure(settings)
    runs = [client.get_run(str(v.run_id)) for v in (candidate, champion)]
    if any(run.data.params.get("selected_on") == "holdout" for run in runs):
        raise ValueError(
            "a version was chosen on the holdout the gate would judge it on; retrain with a validation window"
        )
    tag = runs[0].data.tags["holdout"]
    cutoff, content, _ = HoldoutTag.parse(tag)
    registry_uri = mlflow.get_registry_uri()
    judged = []
    with open_warehouse(settings) as warehouse:
        features = prepare(labelled_build(warehouse, cutoff).features)
        if feature_fingerprint(features.reset_index())["content_sha256"][:16] != content:
            raise ValueError(
                f"the feature build at {cutoff} changed since these versions were trained; retrain"
            )
        labels = features[rule.label].to_numpy(float)
        for version in (candidate, champion):
            loaded = gate.load_version(registry_uri, family.name, str(version.version), str(version.run_id))
            judged.append(Judged(labels, rule.comparison(loaded, warehouse, features, tag)))
    min_gain = float(getattr(settings, rule.min_gain_setting)) if rule.min_gain_setting else 0.0
    # a later window, and both configurations refitted there score alike: the champion's own, retrained
    refit = runs[1].data.tags.get("holdout") != tag and np.array_equal(judged[0].scores, judged[1].scores)
    return weigh(rule.metric, rule.statistic, judged[0], judged[1], min_gain, rule.guards, refit=refit)


def weigh_candidate(settings: Settings, model: str, version: str) -> Evidence | None:
    """The gate's figures for ``version`` against the champion, moving nothing (the notebooks' dry run);
    None when there is no champion, the family compares logged metrics, or the candidate's holdout is
    neither the champion's nor a later one."""
    client = configure(settings)
    family = registry.family(model)
    champion = gate.champion_version(client, family.name)
    if family.gate is None or family.gate.statistic is None or champion is None:
        return None
    candidate = client.get_model_version(family.name, version)
    tags = [client.get_run(str(v.run_id)).data.tags.get("holdout") for v in (candidate, champion)]
    if tags[0] != tags[1] and not gate.later_window(*tags):
        return None
    return warehouse_judge(settings)(family, candidate, champion)


def warehouse_judge(settings: Settings) -> gate.Judge:
    """The gate's evidence from the warehouse: both versions score the stored build at the holdout's
    cutoff (refused when it changed since training), judged by the family's gate statistic."""

    def judge(family: ModelFamily, candidate: Any, champion: Any) -> Evidence:
        why = f"{family.name} v{candidate.version}: cannot be weighed against v{champion.version}"
        try:
            return _weigh_on_warehouse(settings, family, candidate, champion)
        except (LookupError, ValueError) as exc:  # what the versions are: it will not change
            raise gate.UnweighableError(f"{why}: {exc}") from None
        except (OSError, MlflowException) as exc:  # a refusal, not a crash; the next run tries again
            raise gate.PromotionRefusedError(f"{why}: {exc}") from None

    return judge


@dataclass(frozen=True)
class PromoteReport:
    """A promotion and the served day rescored with the new champion (None: nothing served yet)."""

    promotion: gate.Promotion
    rescored: refresh.RefreshReport | None

    def as_dict(self) -> dict[str, Any]:
        rescored = self.rescored.as_dict() if self.rescored else None
        return self.promotion.as_dict() | {"rescored": rescored}


def promote_and_rescore(
    settings: Settings,
    model: str,
    version: str | None = None,
    force: bool = False,
    reason: str = "",
    progress: Progress = no_progress,
) -> PromoteReport:
    """``promote``, then the served day scored again at once (``crm promote``), so the scores served
    always come from the champions they name; an alias moved elsewhere is rescored by the next refresh."""
    promotion = promote(settings, model, version, force, reason)
    return PromoteReport(promotion, refresh.rescore(settings, progress=progress))


def promote_if_better(settings: Settings, model: str) -> PromotionOutcome:
    """Promote the newest version through the gate; a candidate that does not win leaves the champion in
    place (an outcome, not an error)."""
    name = registry.family(model).name
    try:
        promotion = gate.promote(configure(settings), name, judge=warehouse_judge(settings))
    except gate.PromotionRefusedError as exc:
        return PromotionOutcome(name, False, str(exc))
    return PromotionOutcome(name, True, promotion.reason, promotion.version)
