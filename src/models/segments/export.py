"""Segment lists for marketing: filtered, consent-checked, written whole or not at all.

Only customers whose marketing consent is on record (``consent``) are ever written; the report says
how many were left out for that reason and how many by the filters. The file is written next to its
target and renamed into place, so a failed export never leaves half a list behind.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from crm_analytics.errors import InvalidInputError
from crm_analytics.models.segments.consent import marketing_consent
from crm_analytics.models.segments.membership import read_membership
from crm_analytics.warehouse import Warehouse

ExportFormat = Literal["csv", "parquet"]
EXPORT_COLUMNS = [
    "customer_id",
    "family",
    "segment",
    "clv",
    "churn_probability",
    "definition_version",
    "as_of",
]


@dataclass(frozen=True)
class ExportReport:
    segment: str
    path: str
    format: str
    exported: int
    left_out_no_consent: int
    left_out_by_filters: int
    as_of: str  # the day the membership is as of (also a column of the file)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_segment(
    warehouse: Warehouse,
    segment: str,
    out: Path,
    fmt: ExportFormat = "csv",
    min_clv: float | None = None,
    max_churn: float | None = None,
) -> ExportReport:
    """Write the consenting members of ``segment`` (within the filters) to ``out``."""
    if fmt not in ("csv", "parquet"):
        raise InvalidInputError(f"--format: expected csv or parquet, got {fmt!r}")
    if max_churn is not None and not 0 <= max_churn <= 1:
        raise InvalidInputError(f"--max-churn: must lie in [0, 1], got {max_churn}")
    members = read_membership(warehouse, segment)
    if members.empty:
        raise LookupError(f"segment {segment!r}: no such segment; `crm segments list` shows them")
    if members["family"].nunique() > 1:
        raise ValueError(f"segment {segment!r}: the name is used by several families; rename one")
    keep = members["clv"].notna()
    if min_clv is not None:
        keep &= members["clv"] >= min_clv
    if max_churn is not None:
        keep &= members["churn_probability"] <= max_churn
    filtered = members[keep]
    consented = marketing_consent(warehouse, filtered["customer_id"])
    exported = filtered[consented.to_numpy()][EXPORT_COLUMNS]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        if fmt == "csv":
            exported.to_csv(partial, index=False)
        else:
            exported.to_parquet(partial, index=False)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return ExportReport(
        segment=segment,
        path=str(out),
        format=fmt,
        exported=len(exported),
        left_out_no_consent=int((~consented).sum()),
        left_out_by_filters=int((~keep).sum()),
        as_of=str(pd.Timestamp(members["as_of"].max()).date()),
    )
