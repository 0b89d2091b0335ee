"""The main job on the embedded defaults (``crm run``, the first half of ``make run``): the demo chain's
data, ingest, profiles, features at two cutoffs, the CLV, churn and offer models trained, registered and
promoted through the gate, segments, and every customer scored into the serving store."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from crm_analytics.datasets.demo.config import DEMO_CUTOFF, DEMO_END, DEMO_HORIZON_DAYS
from crm_analytics.errors import RefusedError
from crm_analytics.jobs import data, features, ingest, profiles, publish, score, segments, train
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
    segments: segments.SegmentsReport
    scored: score.ScoreReport

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(
    settings: Settings, customers: int = 5_000, seed: int = 42, progress: Progress = no_progress
) -> RunReport:
    """Run the whole pipeline on a generated demo chain of ``customers`` guests under ``data_dir``."""
    demo_dir = settings.data_dir / "demo"
    data.demo_data(demo_dir, customers, seed, "parquet", progress)
    ingested = ingest.ingest(settings, [demo_dir], progress=progress)
    if not ingested.accepted:
        raise IngestRefusedError(ingested)
    progress("linking customer records")
    linked = profiles.build(settings, truth=demo_dir / "truth")
    # one horizon earlier too: churn is then validated by training there and testing at the cutoff
    earlier = DEMO_CUTOFF - timedelta(days=DEMO_HORIZON_DAYS)
    for as_of in (earlier, DEMO_CUTOFF):
        progress(f"building features as of {as_of}")
        built = features.build(settings, as_of, DEMO_HORIZON_DAYS)
    trained = []
    for family in registry.trainable():
        progress(f"training {family.key}")
        truth = demo_dir / "truth"
        trained.append(train.train(settings, family.key, DEMO_CUTOFF, until=DEMO_END, truth=truth).as_dict())
    promotions = [train.promote_if_better(settings, t["model"]).as_dict() for t in trained]
    progress("building segments")
    built_segments = segments.build(settings, DEMO_CUTOFF, progress=progress)
    scored = score.score(settings, DEMO_CUTOFF, progress=progress)
    publish.publish(settings)  # the read copy notebooks and the reading commands open from now on
    return RunReport(
        ingest=ingested,
        summary=ingest.summary(settings),
        profiles=linked.as_dict(),
        features=built,
        trained=trained,
        promotions=promotions,
        segments=built_segments,
        scored=scored,
    )
