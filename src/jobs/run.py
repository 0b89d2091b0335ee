"""The main job on the embedded defaults (``crm run``, the first half of ``make run``): the demo chain's
data, ingest, profiles, features at two cutoffs, the CLV, churn and offer models trained, registered and
promoted through the gate, then the first daily refresh as of the data's last day (features, segments and
every customer scored into the serving store, as of 2025-12-31 on the demo)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from crm_analytics.datasets.demo import Shift
from crm_analytics.datasets.demo.config import DEMO_END, DEMO_HORIZON_DAYS
from crm_analytics.errors import RefusedError
from crm_analytics.jobs import data, features, ingest, profiles, refresh, train
from crm_analytics.jobs.common import Progress, no_progress
from crm_analytics.models import registry
from crm_analytics.settings import Settings


class IngestRefusedError(RefusedError):
    """A batch of the demo data was refused: the run stops before anything downstream."""

    def __init__(self, report: ingest.IngestReport) -> None:
        refused = [b for b in report.batches if b["status"] != "accepted"]
        super().__init__(f"ingest: {len(refused)} batch(es) refused or failed; nothing downstream ran")
        self.report = report


@dataclass(frozen=True)
class RunReport:
    ingest: ingest.IngestReport
    summary: dict[str, Any]
    profiles: dict[str, Any]
    features: features.FeatureBuildReport
    trained: list[dict[str, Any]]
    promotions: list[dict[str, Any]]
    refresh: refresh.RefreshReport

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(
    settings: Settings,
    customers: int = 5_000,
    seed: int = 42,
    progress: Progress = no_progress,
    *,
    until: date = DEMO_END,
    shifts: Sequence[Shift] = (),
    horizon_days: int = DEMO_HORIZON_DAYS,
) -> RunReport:
    """Run the whole pipeline on a generated demo chain of ``customers`` guests under ``data_dir``: its
    history ``until`` a day (default: all of it) with ``shifts`` planted; models learn as of one horizon
    before that day (the last cutoff whose labels are mature; ``horizon_days``, half a year by default) and
    scores are served as of that day."""
    demo_dir = settings.data_dir / "demo"
    data.demo_data(demo_dir, customers, seed, "parquet", progress, until=until, shifts=shifts)
    ingested = ingest.ingest(settings, [demo_dir], progress=progress)
    if not ingested.accepted:
        raise IngestRefusedError(ingested)
    progress("linking customer records")
    linked = profiles.build(settings, truth=demo_dir / "truth")
    cutoff = until - timedelta(days=horizon_days)  # 2025-06-30 for the whole demo
    # one horizon earlier too: churn is then validated by training there and testing at the cutoff
    earlier = cutoff - timedelta(days=horizon_days)
    for as_of in (earlier, cutoff):
        progress(f"building features as of {as_of}")
        built = features.build(settings, as_of, horizon_days)
    trained = []
    for family in (f for f in registry.trainable() if f.trained_by_run):
        progress(f"training {family.key}")
        truth = demo_dir / "truth"
        trained.append(train.train(settings, family.key, cutoff, until=until, truth=truth).as_dict())
    promotions = [train.promote_if_better(settings, t["model"]).as_dict() for t in trained]
    # models learn from the last cutoff whose labels are mature; what is served is as of the data's end
    refreshed = refresh.refresh(settings, until, progress=progress)
    return RunReport(
        ingest=ingested,
        summary=ingest.summary(settings),
        profiles=linked.as_dict(),
        features=built,
        trained=trained,
        promotions=promotions,
        refresh=refreshed,
    )
