"""Write the bundled datasets as raw input files: the synthetic hotel chain and the real CDNOW data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crm_analytics.datasets.cdnow import CDNOW_FILES, write_cdnow
from crm_analytics.datasets.demo import DemoConfig, generate_demo, write_demo
from crm_analytics.errors import InvalidInputError
from crm_analytics.jobs.common import Progress, no_progress

FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class DataReport:
    """The files a dataset job wrote."""

    dataset: str
    files: list[str]
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def demo_data(
    out: Path, customers: int = 5_000, seed: int = 42, fmt: str = "parquet", progress: Progress = no_progress
) -> DataReport:
    """Generate the demo hotel chain into ``out`` (ground truth under ``out/truth``)."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"--format: expected parquet or csv, got {fmt!r}")
    try:
        config = DemoConfig(customers=customers, seed=seed)  # checks what the generator can honour
    except ValueError as exc:
        raise InvalidInputError(f"--customers: {exc}") from None
    data = generate_demo(
        config,
        progress=lambda stage, done: progress(stage, 100 * done, 100),
    )
    progress("writing files", 99, 100)
    paths = write_demo(data, out, fmt)
    progress("demo data written", 100, 100)
    return DataReport("demo", [str(p) for p in paths], {"customers": customers, "seed": seed})


def cdnow_data(out: Path, variant: str = "sample") -> DataReport:
    """Convert the CDNOW data shipped in the lifetimes wheel into the raw transactions contract."""
    if variant not in CDNOW_FILES:
        raise InvalidInputError(f"--variant: expected one of {', '.join(CDNOW_FILES)}, got {variant!r}")
    paths = write_cdnow(variant, out)
    return DataReport(f"cdnow-{variant}", [str(p) for p in paths], {"variant": variant})
