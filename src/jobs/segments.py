"""Marketing segments: build them as of a cutoff, list them, export a segment's consenting members."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from crm_analytics.features.store import read_features
from crm_analytics.jobs.common import Progress, no_progress, open_reader, open_warehouse
from crm_analytics.models.evaluation_plots import save_figures
from crm_analytics.models.segments.build import build_segments
from crm_analytics.models.segments.export import ExportReport, export_segment
from crm_analytics.models.segments.membership import read_membership, segment_summary
from crm_analytics.models.segments.profiles import profile_plot
from crm_analytics.settings import Settings


@dataclass(frozen=True)
class SegmentsReport:
    """What a build made: per family its registered definition, segment sizes and stability."""

    as_of: str
    scored_with: dict[str, str]
    families: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SegmentList:
    segments: list[dict[str, Any]]
    plots: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def build(settings: Settings, as_of: date, seed: int = 0, progress: Progress = no_progress) -> SegmentsReport:
    """Fit every segment family on the feature build of ``as_of``, register the definitions, store the
    membership (needs the CLV and churn champions)."""
    with open_warehouse(settings) as warehouse:
        features = read_features(warehouse, as_of)
        built = build_segments(settings, warehouse, features, as_of, seed, status=progress)
    return SegmentsReport(built["as_of"], built["scored_with"], built["families"])


def list_segments(settings: Settings, plots: Path | None = None) -> SegmentList:
    """Every segment: customers, share, mean CLV and churn, definition version, cutoff; with ``plots``
    a profile plot per family saved there (from the published copy)."""
    with open_reader(settings) as warehouse:
        summary = segment_summary(read_membership(warehouse))
    rows = summary.assign(as_of=summary["as_of"].astype(str)).to_dict(orient="records")
    if plots is None:
        return SegmentList(rows)
    figures = {
        f"segments_{family}": profile_plot(group.set_index("segment"), f"{family} segments")
        for family, group in summary.groupby("family")
    }
    return SegmentList(rows, save_figures(figures, plots))


def export(
    settings: Settings,
    segment: str,
    out: Path,
    fmt: str = "csv",
    min_clv: float | None = None,
    max_churn: float | None = None,
) -> ExportReport:
    """Write a segment's members who gave marketing consent (within the filters) to ``out`` (from the
    published copy)."""
    with open_reader(settings) as warehouse:
        return export_segment(warehouse, segment, out, fmt, min_clv, max_churn)
