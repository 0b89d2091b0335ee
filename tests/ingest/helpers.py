"""Small builders for raw input files used across the ingest tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

GOOD_TRANSACTION = {
    "transaction_id": "T1",
    "customer_id": "C1",
    "source": "shop",
    "timestamp": "2024-03-01T10:00:00Z",
    "amount": "25.50",
    "currency": "EUR",
    "type": "purchase",
    "channel": "web",
}


def transactions(n: int, start: int = 1, **overrides: str) -> list[dict[str, str]]:
    """n valid transaction rows with ids T<start>.., optionally with some fields overridden."""
    return [
        GOOD_TRANSACTION | {"transaction_id": f"T{i}", "customer_id": f"C{i % 7}"} | overrides
        for i in range(start, start + n)
    ]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows, dtype=object).to_csv(path, index=False)
    return path
