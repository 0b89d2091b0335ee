"""Write the bundled datasets as raw input files: the synthetic hotel chain and the real CDNOW data."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from crm_analytics.datasets.cdnow import CDNOW_FILES, write_cdnow
from crm_analytics.datasets.demo import (
    DemoConfig,
    Shift,
    check_window,
    generate_demo,
    parse_shift,
    window,
    write_demo,
)
from crm_analytics.errors import InvalidInputError, RefusedError
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
    out: Path,
    customers: int = 5_000,
    seed: int = 42,
    fmt: str = "parquet",
    progress: Progress = no_progress,
    *,
    start: date | None = None,
    until: date | None = None,
    shifts: Sequence[Shift | str] = (),
) -> DataReport:
    """Generate the demo hotel chain into ``out`` (ground truth under ``out/truth``).

    ``start``/``until`` keep the rows dated within those days (default: the demo's whole span), so
    successive windows are a daily feed of one world; ``shifts`` (``Shift`` or ``"DATE:KIND"``) plant
    changes from a date on. The world is generated whole each time (nothing is cached).
    """
    if fmt not in FORMATS:
        raise InvalidInputError(f"--format: expected parquet or csv, got {fmt!r}")
    planted = tuple(_shift(s) for s in shifts)
    try:
        config = DemoConfig(customers=customers, seed=seed)  # checks what the generator can honour
    except ValueError as exc:
        raise InvalidInputError(f"--customers: {exc}") from None
    try:
        config = DemoConfig(customers=customers, seed=seed, shifts=planted)
    except ValueError as exc:
        raise InvalidInputError(f"--shift: {exc}") from None
    try:
        first, last = check_window(config, start, until, names=("--from", "--until"))
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    data = generate_demo(config, progress=lambda stage, done: progress(stage, 100 * done, 100))
    progress("writing files", 99, 100)
    paths = write_demo(window(data, config, first, last), out, fmt)
    progress("demo data written", 100, 100)
    details = {"customers": customers, "seed": seed, "from": first.isoformat(), "until": last.isoformat()}
    details["shifts"] = [s.as_dict() for s in config.shifts]
    return DataReport("demo", [str(p) for p in paths], details)


def demo_increment(
    incoming: Path,
    start: date,
    until: date,
    customers: int = 5_000,
    seed: int = 42,
    shifts: Sequence[Shift | str] = (),
    progress: Progress = no_progress,
) -> DataReport:
    """One window of the demo world as a source system would drop it: the raw files of the rows dated
    ``start``..``until`` in ``incoming/<start>_<until>/``, appearing whole (written beside, then renamed
    in), the window's ground truth kept apart under ``incoming/../demo-truth/``."""
    name = start.isoformat() if start == until else f"{start.isoformat()}_{until.isoformat()}"
    final = incoming / name
    if final.exists():
        raise RefusedError(f"{final}: already delivered; the incoming folder keeps each window once")
    staging = incoming / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    report = demo_data(staging, customers, seed, "parquet", progress, start=start, until=until, shifts=shifts)
    truth = incoming.parent / "demo-truth" / name
    shutil.rmtree(truth, ignore_errors=True)
    truth.parent.mkdir(parents=True, exist_ok=True)
    (staging / "truth").rename(truth)
    staging.rename(final)
    files = [str(final / Path(f).name) for f in report.files if Path(f).parent == staging]
    return DataReport("demo", files, report.details | {"truth": str(truth)})


def _shift(value: Shift | str) -> Shift:
    """A ``Shift``, parsed from ``DATE:KIND`` if need be; bad input names ``--shift``."""
    if isinstance(value, Shift):
        return value
    try:
        return parse_shift(value)
    except ValueError as exc:
        raise InvalidInputError(f"--shift: {exc}") from None


def cdnow_data(out: Path, variant: str = "sample") -> DataReport:
    """Convert the CDNOW data shipped in the lifetimes wheel into the raw transactions contract."""
    if variant not in CDNOW_FILES:
        raise InvalidInputError(f"--variant: expected one of {', '.join(CDNOW_FILES)}, got {variant!r}")
    paths = write_cdnow(variant, out)
    return DataReport(f"cdnow-{variant}", [str(p) for p in paths], {"variant": variant})
