"""The promotion gate: ``@champion`` moves only to a candidate that beats it on the same holdout.

Which metric a family is judged by comes from its registry record (``ModelFamily.gate``); a family
without a gate (a segment definition) makes every new version the champion.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from crm_analytics.errors import InvalidInputError, NotReadyError, RefusedError
from crm_analytics.models import registry
from crm_analytics.models.family import ModelFamily
from crm_analytics.models.gate_evidence import Evidence
from crm_analytics.models.load_check import check_in_fresh_process
from crm_analytics.models.requirements import warn_if_unmet
from crm_analytics.models.training import HoldoutTag

CHAMPION = "champion"


class PromotionRefusedError(RefusedError):
    """The candidate did not beat the champion (or was measured on another holdout); ``evidence``: the
    gate's figures when it weighed them."""

    def __init__(self, message: str, evidence: Evidence | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence


class UnweighableError(PromotionRefusedError):
    """The candidate can never be weighed against the champion (chosen on the holdout, or its feature
    build changed since): kept as its decision, unlike a store that failed for a moment."""


# (family, candidate version, champion version) -> the gate's figures on the comparison window
Judge = Callable[[ModelFamily, Any, Any], Evidence]


@dataclass(frozen=True)
class Promotion:
    model: str
    version: str
    metric: str
    candidate: float | None
    champion: float | None
    forced: bool
    reason: str
    promoted: bool = True
    evidence: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def loads_like_champion(name: str, candidate: str, champion: str) -> None:
    """A PromotionRefusedError unless ``candidate`` loads in a fresh process and has the champion's
    output columns (``load_check``): the API would fail to start on it, or answer in another shape."""
    try:
        ours = check_in_fresh_process(name, candidate)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise PromotionRefusedError(f"{exc}; the champion stays v{champion}") from None
    try:
        signature = mlflow.models.get_model_info(f"models:/{name}/{champion}").signature
    except (MlflowException, OSError):  # the champion itself is broken: replacing it is the point
        return
    if signature is None or signature.outputs is None:
        return
    theirs = [str(column) for column in signature.outputs.input_names()]
    if ours != theirs:
        raise PromotionRefusedError(
            f"{name} v{candidate} answers with columns {ours}, the champion v{champion} with {theirs}; "
            "the champion stays"
        )


def champion_version(client: MlflowClient, name: str) -> Any | None:
    """The model version ``name@champion`` points at, or None."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def champion_map(client: MlflowClient, families: Iterable[ModelFamily]) -> dict[str, str | None]:
    """name -> the @champion's version of each family, None where there is none yet."""
    return {f.name: str(v.version) if (v := champion_version(client, f.name)) else None for f in families}


def champion_versions(client: MlflowClient, families: Iterable[ModelFamily]) -> dict[str, tuple[str, str]]:
    """name -> (version, run id) of each family's @champion; a LookupError naming a missing one."""
    found = {}
    for item in families:
        version = champion_version(client, item.name)
        if version is None:
            raise LookupError(f"{item.name}: no @{CHAMPION}; run `crm run` or `crm promote {item.key}`")
        found[item.name] = (str(version.version), str(version.run_id))
    return found


def load_champions(
    client: MlflowClient, families: Iterable[ModelFamily]
) -> tuple[dict[str, tuple[str, str]], dict[str, Any]]:
    """``champion_versions`` and each of those versions loaded as a pyfunc, by registered name."""
    found = champion_versions(client, families)
    registry_uri = mlflow.get_registry_uri()  # what models:/ URIs resolve against
    loaded = {name: load_version(registry_uri, name, v, run_id) for name, (v, run_id) in found.items()}
    return found, loaded


@functools.lru_cache(maxsize=32)
def load_version(registry_uri: str, name: str, version: str, run_id: str) -> Any:
    """A registered version loaded as a pyfunc, once per process: a version's artifacts never change,
    and a daily refresh (or a Dagster worker) would otherwise load the same champions at every stage
    (~0.3-1 s each). Keyed by the registry and the version's run, so another store is another model."""
    uri = f"models:/{name}/{version}"
    model = mlflow.pyfunc.load_model(uri, suppress_warnings=True)  # MLflow's own check: ~1 s a process
    with tempfile.TemporaryDirectory() as folder:
        try:
            wanted = mlflow.artifacts.download_artifacts(f"{uri}/requirements.txt", dst_path=folder)
        except MlflowException:  # logged without one: nothing to compare
            return model
        warn_if_unmet(f"{name} version {version}", Path(wanted))
    return model


def later_window(candidate_tag: str | None, champion_tag: str | None) -> bool:
    """Whether the candidate's holdout starts after the champion's: a retraining on newer mature labels,
    which the judge weighs on the candidate's window (both versions scored there; neither was trained
    on it). Tags that do not parse are not comparable."""
    try:
        return HoldoutTag.parse(str(candidate_tag)).cutoff > HoldoutTag.parse(str(champion_tag)).cutoff
    except ValueError:
        return False


def promote(
    client: MlflowClient,
    name: str,
    version: str | None = None,
    force: bool = False,
    reason: str = "",
    judge: Judge | None = None,
) -> Promotion:
    """Point ``name@champion`` at ``version`` (default: the newest) if it wins the gate, or if forced;
    either way a candidate replacing a champion must load in a fresh process with the champion's output
    columns (``loads_like_champion``). ``judge``: weighs the evidence for families whose gate has a
    statistic (``models.gate_evidence``); without one the logged metrics are compared. The decision and
    its figures are kept as the candidate version's ``gate`` tag."""
    item = registry.family(name)
    if force and not reason.strip():
        raise InvalidInputError("--reason: a forced promotion must say why")
    versions = client.search_model_versions(f"name = '{item.name}'")
    if not versions:
        raise LookupError(f"{item.name}: no registered versions; train one first")
    candidate = (
        next((v for v in versions if str(v.version) == str(version)), None)
        if version
        else max(versions, key=lambda v: int(v.version))
    )
    if candidate is None:
        raise InvalidInputError(f"--version: {item.name} has no version {version}")
    current = champion_version(client, item.name)
    if item.gate is None:
        note = reason if force else "a new definition replaces the old one (no gate)"
        client.set_registered_model_alias(item.name, CHAMPION, candidate.version)
        client.set_model_version_tag(item.name, candidate.version, "promotion", note)
        return Promotion(item.name, str(candidate.version), "", None, None, force, note)
    metric, higher_is_better = item.gate.metric, item.gate.higher_is_better
    candidate_run = client.get_run(str(candidate.run_id))
    if metric not in candidate_run.data.metrics:
        raise NotReadyError(f"{item.name} v{candidate.version}: its run logged no {metric}; retrain it")
    score = candidate_run.data.metrics[metric]
    champion_score = None
    evidence: Evidence | None = None
    if current is not None and not force:
        champion_run = client.get_run(current.run_id)
        champion_score = champion_run.data.metrics[metric]
        ours, theirs = candidate_run.data.tags.get("holdout"), champion_run.data.tags.get("holdout")
        weighed = judge is not None and item.gate.statistic is not None
        if ours != theirs and not (weighed and later_window(ours, theirs)):
            raise PromotionRefusedError(
                f"{item.name} v{candidate.version} was evaluated on holdout {ours}, the champion "
                f"v{current.version} on {theirs}: not comparable; retrain on one split, or --force --reason"
            )
        if str(current.version) == str(candidate.version):
            raise PromotionRefusedError(f"{item.name} v{candidate.version} is the champion already")
        if weighed and judge is not None:
            try:
                evidence = judge(item, candidate, current)
            except UnweighableError as exc:  # kept as its decision: `crm retrain` does not retry it
                refusal = {"passed": False, "reason": str(exc)}
                client.set_model_version_tag(item.name, candidate.version, "gate", json.dumps(refusal))
                raise
            client.set_model_version_tag(item.name, candidate.version, "gate", json.dumps(evidence.as_dict()))
            if not evidence.passed:
                raise PromotionRefusedError(
                    f"{item.name} v{candidate.version}: {evidence.reason}; the champion v{current.version} "
                    "stays",
                    evidence,
                )
            score, champion_score = evidence.candidate, evidence.champion
        else:
            better = score > champion_score if higher_is_better else score < champion_score
            if not better:
                raise PromotionRefusedError(
                    f"{item.name} v{candidate.version}: {metric} {score:.4f} does not beat the champion "
                    f"v{current.version} ({champion_score:.4f}) on the same holdout"
                )
    if current is not None and str(current.version) != str(candidate.version):
        loads_like_champion(item.name, str(candidate.version), str(current.version))
    client.set_registered_model_alias(item.name, CHAMPION, candidate.version)
    if force or current is None:
        note = reason if force else "first champion"
    elif evidence is not None:
        note = f"beat v{current.version}: {evidence.reason}"
    else:
        note = f"beat v{current.version} on {metric}"
    client.set_model_version_tag(item.name, candidate.version, "promotion", note)
    figures = evidence.as_dict() if evidence is not None else None
    version = str(candidate.version)
    return Promotion(item.name, version, metric, score, champion_score, force, note, True, figures)
