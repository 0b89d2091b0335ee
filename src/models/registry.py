"""The promotion gate: ``@champion`` moves only to a candidate that beats it on the same holdout."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION = "champion"
# the metric each registered model is judged by, and whether higher is better
GATE_METRICS: dict[str, tuple[str, bool]] = {
    "crm-clv": ("holdout_spearman", True),
    "crm-churn": ("roc_auc", True),
    "crm-offers": ("ips_value", True),  # our policy's margin per booking on the held-out offer log
}


class PromotionRefusedError(RuntimeError):
    """The candidate did not beat the champion (or was measured on another holdout)."""


@dataclass(frozen=True)
class Promotion:
    model: str
    version: str
    metric: str
    candidate: float
    champion: float | None
    forced: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def champion_version(client: MlflowClient, name: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def promote(
    client: MlflowClient, name: str, version: str | None = None, force: bool = False, reason: str = ""
) -> Promotion:
    """Point ``name@champion`` at ``version`` (default: the newest) if it wins the gate, or if forced."""
    if name not in GATE_METRICS:
        raise ValueError(f"model: expected one of {', '.join(GATE_METRICS)}, got {name!r}")
    if force and not reason.strip():
        raise ValueError("--reason: a forced promotion must say why")
    metric, higher_is_better = GATE_METRICS[name]
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise LookupError(f"{name}: no registered versions; train one first")
    candidate = (
        next((v for v in versions if str(v.version) == str(version)), None)
        if version
        else max(versions, key=lambda v: int(v.version))
    )
    if candidate is None:
        raise LookupError(f"{name}: no version {version}")
    candidate_run = client.get_run(str(candidate.run_id))
    score = candidate_run.data.metrics[metric]
    current = champion_version(client, name)
    champion_score = None
    if current is not None and not force:
        champion_run = client.get_run(current.run_id)
        champion_score = champion_run.data.metrics[metric]
        ours, theirs = candidate_run.data.tags.get("holdout"), champion_run.data.tags.get("holdout")
        if ours != theirs:
            raise PromotionRefusedError(
                f"{name} v{candidate.version} was evaluated on holdout {ours}, the champion "
                f"v{current.version} on {theirs}: not comparable; retrain on one split, or --force --reason"
            )
        better = score > champion_score if higher_is_better else score < champion_score
        if not better:
            raise PromotionRefusedError(
                f"{name} v{candidate.version}: {metric} {score:.4f} does not beat the champion "
                f"v{current.version} ({champion_score:.4f}) on the same holdout"
            )
    client.set_registered_model_alias(name, CHAMPION, candidate.version)
    note = (
        reason if force else ("first champion" if current is None else f"beat v{current.version} on {metric}")
    )
    client.set_model_version_tag(name, candidate.version, "promotion", note)
    return Promotion(name, str(candidate.version), metric, score, champion_score, force, note)
