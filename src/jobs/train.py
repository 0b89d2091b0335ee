"""Train a model family on the warehouse, log and register it; promote a version through the gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from crm_analytics.errors import InvalidInputError
from crm_analytics.jobs import refresh
from crm_analytics.jobs.common import Progress, no_progress, open_warehouse
from crm_analytics.models import gate, registry
from crm_analytics.models.family import TrainRequest, TrainResult
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure


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
    return gate.promote(configure(settings), registry.family(model).name, version, force, reason)


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
        promotion = gate.promote(configure(settings), name)
    except gate.PromotionRefusedError as exc:
        return PromotionOutcome(name, False, str(exc))
    return PromotionOutcome(name, True, promotion.reason, promotion.version)
