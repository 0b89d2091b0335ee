"""``crm retrain``: the champions retrained on schedule or on a breach, through the gate.

Due when the newest cutoff whose labels are mature (the day minus the champion's horizon) is
``CRM_RETRAIN_EVERY_DAYS`` or more after the last cutoff a version was trained at (weekly by default,
counted in data days, so a replayed history retrains as the live one would), or, with
``CRM_RETRAIN_ON_BREACH``, when the day's monitoring found drift or a realized-performance breach and a
newer mature cutoff exists (retraining on the same labels would change nothing). Then the features of
that cutoff (and one horizon before, where churn validates) are built, each family whose gate weighs
scores (churn, CLV) is trained there and weighed against its champion on that window by the gate
(``train.promote_if_better``: the decision and its figures are recorded on the version either way), and
the served day is rescored when a champion changed. Not due: nothing happens, and the report says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from crm_analytics.errors import NotReadyError
from crm_analytics.features.store import build_record
from crm_analytics.jobs import features, refresh, train
from crm_analytics.jobs.common import Progress, no_progress, open_reader, open_store, open_warehouse
from crm_analytics.models import registry
from crm_analytics.models.family import ModelFamily
from crm_analytics.models.gate import champion_version
from crm_analytics.models.training import HoldoutTag
from crm_analytics.monitoring import drift, realized
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure


@dataclass(frozen=True)
class RetrainReport:
    """Whether retraining was due on ``as_of`` and why, and what the gate decided per family."""

    as_of: str
    due: bool
    reason: str
    cutoff: str | None = None
    promotions: list[dict[str, Any]] = field(default_factory=list)
    rescored: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Champion:
    """A family's champion: its horizon and time unit, and the newest cutoff any version of the family
    was trained at (a candidate the gate refused counts: the same cutoff is not tried twice)."""

    family: ModelFamily
    cutoff: date
    horizon_days: int
    time_unit: str


def retrain(
    settings: Settings, as_of: date | None = None, *, force: bool = False, progress: Progress = no_progress
) -> RetrainReport:
    """Retrain the gated families if due on ``as_of`` (default: the served day), or always with
    ``force``; promote through the gate; rescore the served day when a champion changed."""
    day = as_of or _served_day(settings)
    champions = gated_champions(settings)
    if not champions:
        raise NotReadyError("retrain: no champion to retrain yet; run `crm run` or `crm train` first")
    horizon, unit = champions[0].horizon_days, champions[0].time_unit
    cutoff = day - timedelta(days=horizon)
    reason = "forced (--force)" if force else due_reason(settings, day, cutoff, champions)
    if reason is None:
        behind = (cutoff - min(c.cutoff for c in champions)).days
        why = f"not due: the last training cutoff is {behind} day(s) behind the newest mature one"
        return RetrainReport(str(day), False, why + f" (retrained every {settings.retrain_every_days})")
    for at in (cutoff - timedelta(days=horizon), cutoff):  # churn validates one horizon earlier
        if not _labelled_build_exists(settings, at, horizon, unit):  # a build versions were judged on stays
            progress(f"building features as of {at}")
            features.build(settings, at, horizon, unit)
    outcomes = []
    for champion in champions:
        progress(f"training {champion.family.key} as of {cutoff}")
        train.train(settings, champion.family.key, cutoff, until=day)
        outcomes.append(train.promote_if_better(settings, champion.family.key).as_dict())
    rescored = (
        any(o["promoted"] for o in outcomes) and refresh.rescore(settings, progress=progress) is not None
    )
    return RetrainReport(str(day), True, reason, str(cutoff), outcomes, rescored)


def due_reason(settings: Settings, day: date, cutoff: date, champions: list[Champion]) -> str | None:
    """Why retraining is due on ``day`` with ``cutoff`` the newest mature one, or None."""
    oldest = min(c.cutoff for c in champions)
    if (cutoff - oldest).days >= settings.retrain_every_days:
        return f"schedule: the last training cutoff {oldest} is {(cutoff - oldest).days} days behind {cutoff}"
    if settings.retrain_on_breach and cutoff > oldest:
        breaches = monitored_breaches(settings, day)
        if breaches:
            return f"breach on {day}: {', '.join(breaches[:5])}"
    return None


def monitored_breaches(settings: Settings, day: date) -> list[str]:
    """The drift and realized-performance breaches the monitoring of ``day`` found."""
    with open_reader(settings) as warehouse:
        drifted = drift.latest(warehouse) if warehouse.has_table(drift.DRIFT_TABLE) else []
        matured = realized.latest(warehouse) if warehouse.has_table(realized.PERFORMANCE_TABLE) else []
    found = [f"drift {c.view}:{c.name}" for c in drifted if c.breach and c.as_of == str(day)]
    latest = {r.model: r.scored_as_of for r in matured}
    found += [
        f"realized {r.model}:{r.metric}" for r in matured if r.breach and r.scored_as_of == latest[r.model]
    ]
    return found


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
        tried = [
            HoldoutTag.parse(tag).cutoff
            for v in client.search_model_versions(f"name = '{family.name}'")
            if (tag := client.get_run(str(v.run_id)).data.tags.get("holdout"))
        ]
        found.append(Champion(family, max(tried), int(params["horizon_days"]), params["time_unit"]))
    return found


def _labelled_build_exists(settings: Settings, as_of: date, horizon_days: int, time_unit: str) -> bool:
    with open_warehouse(settings) as warehouse:
        try:
            config = build_record(warehouse, as_of)["config"]
        except LookupError:
            return False
    return (config["horizon_days"], config["time_unit"]) == (horizon_days, time_unit)


def _served_day(settings: Settings) -> date:
    active = open_store(settings).active()
    if active is None:
        raise NotReadyError("retrain: nothing is served yet; run `crm refresh` first")
    return date.fromisoformat(active.as_of)
