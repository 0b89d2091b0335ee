"""Pairwise linkage quality against known identities (the demo data's ``truth/identities``).

Every pair of records placed in one customer is a predicted match; every pair of records of one true
person is a true match. Counted from cluster sizes, never by listing pairs, so it is exact and cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class PairwiseQuality:
    """Pairwise precision, recall and F1 of a clustering, with the pair counts behind them."""

    precision: float
    recall: float
    f1: float
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int
    records: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise_quality(predicted: pd.Series, truth: pd.Series) -> PairwiseQuality:
    """Quality of ``predicted`` cluster labels against ``truth`` labels, both indexed by record key.

    Records missing from ``truth`` are an error: the evaluation would silently shrink."""
    missing = predicted.index.difference(truth.index)
    if len(missing):
        raise ValueError(f"truth: {len(missing)} records have no true identity (e.g. {missing[0]!r})")
    frame = pd.DataFrame({"cluster": predicted, "person": truth.reindex(predicted.index)})
    predicted_pairs = _pairs(frame.groupby("cluster").size())
    true_pairs = _pairs(frame.groupby("person").size())
    correct = _pairs(frame.groupby(["cluster", "person"]).size())
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairwiseQuality(precision, recall, f1, predicted_pairs, true_pairs, correct, len(frame))


def read_identities(truth_dir: Path) -> pd.Series:
    """The demo truth's person id per record key (``source:source_customer_id``)."""
    identities = pd.read_parquet(Path(truth_dir) / "identities.parquet")
    key = identities["source"].astype(str) + ":" + identities["source_customer_id"].astype(str)
    return pd.Series(identities["person_id"].to_numpy(), index=key.to_numpy())
