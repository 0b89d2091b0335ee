"""Two samples of one quantity compared: how far apart (a distance), how unlikely by chance (a p-value)
and the population stability index (PSI) people know, over bins fixed by the reference.

The distance is the largest difference in probability the two give any event of a family: for a number,
KS's D over the half-lines (``x <= t``); for a category, the total variation over all sets of categories.
One threshold then reads the same for both ("some event's share moved by 5 points"). PSI is reported, not
judged: its noise floor falls with the sample size (about (bins - 1) / n), so a fixed PSI limit is either
deaf at 20,000 rows or an alarm at 200; the p-value carries the sample size instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

BINS = 10  # reference deciles: PSI's usual bins
FLOOR = 1e-4  # an empty bin's share in PSI (log 0 otherwise)


@dataclass(frozen=True)
class Comparison:
    """A current sample against its reference: distance, p-value, PSI, and the shares per reference
    bin (or category) for a plot."""

    kind: str  # continuous | categorical
    distance: float
    p_value: float
    psi: float
    rows: int
    reference_rows: int
    labels: tuple[str, ...]
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]


def compare_numbers(reference: np.ndarray, current: np.ndarray) -> Comparison:
    """Two samples of a number (NaN dropped): KS two-sample D and p; PSI over the reference's deciles
    (ties merge bins, so a count feature of few values gets fewer bins)."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    ks = stats.ks_2samp(reference, current)
    # edges at values the reference takes (no bin between two counts); none at its maximum (an empty bin)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, BINS + 1)[1:-1], method="inverted_cdf"))
    edges = edges[edges < reference.max()] if len(reference) else edges
    ref_shares = _shares(np.searchsorted(edges, reference, side="left"), len(edges) + 1)
    cur_shares = _shares(np.searchsorted(edges, current, side="left"), len(edges) + 1)
    bounds = [f"{e:.4g}" for e in edges]
    labels = [f"<= {bounds[0]}" if bounds else "all"]
    labels += [f"({a}, {b}]" for a, b in pairwise(bounds)]
    labels += [f"> {bounds[-1]}"] if bounds else []
    return Comparison(
        "continuous",
        float(ks.statistic),
        float(ks.pvalue),
        psi(ref_shares, cur_shares),
        len(current),
        len(reference),
        tuple(labels),
        tuple(ref_shares),
        tuple(cur_shares),
    )


def compare_categories(ref_counts: pd.Series, cur_counts: pd.Series) -> Comparison:
    """Two samples of a category, as counts per value (``value_counts()``): total variation distance,
    the chi-square test of the 2 x k table and PSI over the categories."""
    categories = sorted(set(ref_counts.index) | set(cur_counts.index))
    ref = ref_counts.reindex(categories, fill_value=0).to_numpy(dtype=float)
    cur = cur_counts.reindex(categories, fill_value=0).to_numpy(dtype=float)
    ref_shares, cur_shares = ref / max(ref.sum(), 1), cur / max(cur.sum(), 1)
    seen = (ref + cur) > 0
    if seen.sum() < 2:
        p_value = 1.0  # one category on both sides: nothing can differ
    else:
        p_value = float(stats.chi2_contingency(np.vstack([ref[seen], cur[seen]]), correction=False).pvalue)
    return Comparison(
        "categorical",
        float(np.abs(cur_shares - ref_shares).sum() / 2),
        p_value,
        psi(ref_shares, cur_shares),
        int(cur.sum()),
        int(ref.sum()),
        tuple(str(c) for c in categories),
        tuple(float(s) for s in ref_shares),
        tuple(float(s) for s in cur_shares),
    )


def psi(reference_shares: ArrayLike, current_shares: ArrayLike) -> float:
    """Population stability index: sum of (current - reference) * ln(current / reference) per bin."""
    ref = np.clip(np.asarray(reference_shares, dtype=float), FLOOR, None)
    cur = np.clip(np.asarray(current_shares, dtype=float), FLOOR, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _shares(bin_index: np.ndarray, bins: int) -> list[float]:
    counts = np.bincount(bin_index, minlength=bins).astype(float)
    return list(counts / max(counts.sum(), 1.0))
