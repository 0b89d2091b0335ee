"""``crm retrain``: the champions retrained on schedule or on a breach, through the gate.

Per family (churn, CLV: the families whose gate weighs scores), its newest mature cutoff is the day minus
its champion's horizon. It is due when that cutoff is ``CRM_RETRAIN_EVERY_DAYS`` or more after the last
cutoff any of its versions was trained at (weekly by default, counted in data days, so a replayed
history retrains as the live one would; a refused candidate counts, so one cutoff is tried once), or,
with ``CRM_RETRAIN_ON_BREACH``, when the family's latest matured cohort is in breach, was scored after
that cutoff (whichever version scored it: a weekly refit learned from the same older labels), and at
least ``CRM_RETRAIN_BREACH_MIN_DAYS`` days of newer labels exist (a lasting breach retrains at most
every ``CRM_MONITOR_LATE_DAYS`` + 1 days, until the new version's own cohorts are measured). Drift
alone does not retrain: what drifted today has no mature labels yet.

When due, the labelled features of the new cutoff (and one horizon before, where churn validates) are
built unless they exist, the family is trained there and weighed against its champion by the gate
(``train.promote_if_better``: the decision and its figures are kept on the version either way), and the
served day is rescored when a champion changed. A candidate left unweighed by a killed run is weighed
first. Not due: nothing happens, and the report says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from mlflow.tracking import MlflowClient

from crm_analytics.errors import NotReadyError
from crm_analytics.features.store import has_labelled_build
from crm_analytics.jobs import features, refresh, train
from crm_analytics.jobs.common import Progress, no_progress, open_reader, open_store, open_warehouse
from crm_analytics.models import registry
from crm_analytics.models.family import ModelFamily
from crm_analytics.models.gate import champion_version
from crm_analytics.models.training import HoldoutTag
from crm_analytics.monitoring import realized
from crm_analytics.monitoring.realized import Realized
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure


@dataclass(frozen=True)
class RetrainReport:
    """Per family whether retraining was due on ``as_of`` and why, and what the gate decided."""

    as_of: str
    due: bool
    reasons: dict[str, str]
    promotions: list[dict[str, Any]] = field(default_factory=list)
    rescored: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Champion:
    """A family's champion: its version, horizon and time unit; the newest cutoff any version of the
    family was trained at, and the newest version when the gate has not weighed it yet."""

    family: ModelFamily
    version: str
    horizon_days: int
    time_unit: str
    tried: date
    unweighed: str | None

    def cutoff(self, day: date) -> date:
        """The newest cutoff whose labels are mature on ``day``."""
        return day - timedelta(days=self.horizon_days)


def retrain(
    settings: Settings, as_of: date | None = None, *, force: bool = False, progress: Progress = no_progress
) -> RetrainReport:
    """Retrain each gated family that is due on ``as_of`` (default: the served day), or every one with
    ``force``; weigh through the gate; rescore the served day when a champion changed."""
    day = as_of or _served_day(settings)
    champions = gated_champions(settings)
    if not champions:
        raise NotReadyError("retrain: no champion to retrain yet; run `crm run` or `crm train` first")
    reasons, outcomes = {}, []
    for champion in champions:
        name = champion.family.name
        if champion.unweighed is not None:  # a run killed between training and the gate
            outcomes.append(train.promote_if_better(settings, champion.family.key).as_dict())
        reason = "forced (--force)" if force else due_reason(settings, day, champion)
        if reason is None:
            behind = (champion.cutoff(day) - champion.tried).days
            reasons[name] = f"not due: trained {behind} day(s) before the newest mature cutoff"
            continue
        reasons[name] = reason
        cutoff = champion.cutoff(day)
        for at in (cutoff - timedelta(days=champion.horizon_days), cutoff):  # churn validates a horizon back
            if not _labelled_build_exists(settings, at, champion.horizon_days, champion.time_unit):
                progress(f"building features as of {at}")
                features.build(settings, at, champion.horizon_days, champion.time_unit)
        progress(f"training {champion.family.key} as of {cutoff}")
        train.train(settings, champion.family.key, cutoff, until=day)
        outcomes.append(train.promote_if_better(settings, champion.family.key).as_dict())
    due = any(not r.startswith("not due") for r in reasons.values())
    rescored = (
        any(o["promoted"] for o in outcomes) and refresh.rescore(settings, progress=progress) is not None
    )
    return RetrainReport(str(day), due, reasons, outcomes, rescored)


def due_reason(settings: Settings, day: date, champion: Champion) -> str | None:
    """Why ``champion``'s family is due on ``day``, or None."""
    cutoff = champion.cutoff(day)
    newer = (cutoff - champion.tried).days
    if newer >= settings.retrain_every_days:
        return f"schedule: last trained at {champion.tried}, {newer} days before {cutoff}"
    if settings.retrain_on_breach and newer >= settings.retrain_breach_min_days:
        breaches = realized_breaches(matured_rows(settings), champion)
        if breaches:
            return f"breach: {', '.join(breaches[:3])}"
    return None


def realized_breaches(rows: list[Realized], champion: Champion) -> list[str]:
    """The breaches of ``champion``'s family on its latest matured scored day, when that day is after
    the newest cutoff the family was trained at (its labels are news to every version)."""
    mine = [r for r in rows if r.model == champion.family.name]
    return [
        f"{r.metric} scored {r.scored_as_of} by v{r.version}"
        for r in realized.latest_cohorts(mine)
        if r.breach and date.fromisoformat(r.scored_as_of) > champion.tried
    ]


def matured_rows(settings: Settings) -> list[Realized]:
    """The realized-performance rows of the latest matured days, as the published copy has them."""
    with open_reader(settings) as warehouse:
        return realized.latest(warehouse)


def gated_champions(settings: Settings) -> list[Champion]:
    """The champions of the families whose gate weighs scores on the warehouse (churn, CLV)."""
    client = configure(settings)
    found = []
    for family in registry.trainable():
        if family.gate is None or family.gate.statistic is None or not family.trained_by_run:
            continue
        version = champion_version(client, family.name)
        if version is None:
            continue
        params = client.get_run(str(version.run_id)).data.params
        tried, unweighed = _tried(client, family.name, str(version.version))
        horizon, unit = int(params["horizon_days"]), params["time_unit"]
        found.append(Champion(family, str(version.version), horizon, unit, tried, unweighed))
    return found


def _tried(client: MlflowClient, name: str, champion: str) -> tuple[date, str | None]:
    """The newest cutoff a version of ``name`` was trained at, and that version when the gate never
    weighed it (no ``gate`` or ``promotion`` tag, not the champion). Tags of old releases that do not
    parse are skipped."""
    cutoffs: dict[date, Any] = {}
    for version in client.search_model_versions(f"name = '{name}'"):
        tag = client.get_run(str(version.run_id)).data.tags.get("holdout")
        try:
            cutoff = HoldoutTag.parse(str(tag)).cutoff
        except ValueError:
            continue
        if cutoff not in cutoffs or int(version.version) > int(cutoffs[cutoff].version):
            cutoffs[cutoff] = version
    newest = max(cutoffs)
    version = cutoffs[newest]
    weighed = {"gate", "promotion"} & set(version.tags) or str(version.version) == champion
    return newest, None if weighed else str(version.version)


def _labelled_build_exists(settings: Settings, as_of: date, horizon_days: int, time_unit: str) -> bool:
    with open_warehouse(settings) as warehouse:
        return has_labelled_build(warehouse, as_of, horizon_days, time_unit)


def _served_day(settings: Settings) -> date:
    active = open_store(settings).active()
    if active is None:
        raise NotReadyError("retrain: nothing is served yet; run `crm refresh` first")
    return date.fromisoformat(active.as_of)
