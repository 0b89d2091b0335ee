"""RFM segments: recency, frequency and monetary quintile scores (1 worst .. 5 best) and ten named segments.

What is scored (columns of the feature table):

- R: ``days_since_last``, days from the last purchase day to the cutoff; lower is better, so R5 is the
  most recent fifth. (Not the BTYD ``recency``, which is first-to-last purchase and in the time unit.)
- F: purchase days = ``frequency`` + 1 (BTYD ``frequency`` counts the purchase days after the first;
  same-day purchases are merged). The + 1 changes no score; it makes the stored edges read as purchase days.
- M: ``spend_total``, total spend. (Not ``monetary_value``: it is 0 for every one-time buyer.)

Edges: ``fit`` stores the 20/40/60/80% quantiles (linear interpolation) of each score's column in
``edges_``; ``transform`` scores with those stored edges, so a customer scored alone later gets what they
got inside the fitted population (the fitted segmenter is the versioned definition).

Scores: a score is 1 + the number of edges the value strictly beats (F and M: edges below the value;
R: edges above it), computed with ``np.searchsorted``. A value equal to an edge does not beat it, so it
always takes the lower score, and equal values always get equal scores. Ties: when many customers share a
value, quantile edges coincide and the scores between them stay empty; they are not re-spread, so a score
keeps its meaning (F3 = beats the 20% and 40% quantiles), which matters because F and M are averaged. On
CDNOW_sample 60% bought on one day only: the frequency edges are (1, 1, 2, 3), so one-day buyers get F1,
two days F3, three F4, four or more F5, and F2 is empty. If every fitted value is equal, all fitted
customers get score 1 and only later customers who beat that value can score 5.

FM = (F + M) / 2 rounded half up. Segments from (R, FM), a complete partition of the 5 x 5 grid (``RULES``;
``rules_table()`` renders this table and a test checks it is the one below):

| segment | R | FM |
|---|---|---|
| Champions | 5 | 4-5 |
| Loyal | 3-4 | 4-5 |
| Potential loyalists | 4-5 | 2-3 |
| New | 5 | 1 |
| Promising | 4 | 1 |
| Need attention | 3 | 1-3 |
| At risk | 1-2 | 3-4 |
| Can't lose them | 1-2 | 5 |
| Hibernating | 2 | 1-2 |
| Lost | 1 | 1-2 |
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from crm_analytics.models.inputs import NOT_FITTED, check_frame

SCHEME_VERSION = 1  # bump when the columns, score rule or segment rules change
QUANTILES = (0.2, 0.4, 0.6, 0.8)
SCORES = range(1, 6)
COLUMNS = {"recency": "days_since_last", "frequency": "frequency", "monetary": "spend_total"}


class SegmentRule(NamedTuple):
    """A named segment: the R scores and FM scores it covers."""

    name: str
    r: tuple[int, ...]
    fm: tuple[int, ...]


RULES: tuple[SegmentRule, ...] = (
    SegmentRule("Champions", (5,), (4, 5)),
    SegmentRule("Loyal", (3, 4), (4, 5)),
    SegmentRule("Potential loyalists", (4, 5), (2, 3)),
    SegmentRule("New", (5,), (1,)),
    SegmentRule("Promising", (4,), (1,)),
    SegmentRule("Need attention", (3,), (1, 2, 3)),
    SegmentRule("At risk", (1, 2), (3, 4)),
    SegmentRule("Can't lose them", (1, 2), (5,)),
    SegmentRule("Hibernating", (2,), (1, 2)),
    SegmentRule("Lost", (1,), (1, 2)),
)
SEGMENT_NAMES: tuple[str, ...] = tuple(rule.name for rule in RULES)


def segment_grid(rules: tuple[SegmentRule, ...] = RULES) -> dict[tuple[int, int], str]:
    """(R, FM) -> segment name; a ValueError unless the rules cover every pair exactly once."""
    grid: dict[tuple[int, int], str] = {}
    for rule in rules:
        for cell in ((r, fm) for r in rule.r for fm in rule.fm):
            if cell not in {(r, fm) for r in SCORES for fm in SCORES}:
                raise ValueError(f"rule {rule.name!r}: (R, FM) = {cell} is outside 1..5")
            if cell in grid:
                raise ValueError(f"rules {grid[cell]!r} and {rule.name!r} both cover (R, FM) = {cell}")
            grid[cell] = rule.name
    missing = [(r, fm) for r in SCORES for fm in SCORES if (r, fm) not in grid]
    if missing:
        raise ValueError(f"no rule covers (R, FM) = {missing[0]}")
    return grid


GRID = segment_grid()
_LOOKUP = np.array([[GRID[(r, fm)] for fm in SCORES] for r in SCORES], dtype=object)  # [R - 1, FM - 1]


def _span(scores: tuple[int, ...]) -> str:
    return str(scores[0]) if len(scores) == 1 else f"{scores[0]}-{scores[-1]}"


def rules_table(rules: tuple[SegmentRule, ...] = RULES) -> str:
    """The rules as the markdown table in this module's docstring."""
    rows = [f"| {rule.name} | {_span(rule.r)} | {_span(rule.fm)} |" for rule in rules]
    return "\n".join(["| segment | R | FM |", "|---|---|---|", *rows])


def fm_score(f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(F + M) / 2 rounded half up (integer arithmetic, so no banker's rounding)."""
    return (np.asarray(f) + np.asarray(m) + 1) // 2


class RFMSegmenter(TransformerMixin, BaseEstimator):
    """RFM quintile scores and named segments; ``fit`` learns the edges, ``transform`` applies them."""

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "edges_")

    def __repr__(self) -> str:
        return f"RFMSegmenter({'fitted' if self.__sklearn_is_fitted__() else 'not fitted'})"

    def fit(self, features: pd.DataFrame, y: None = None) -> RFMSegmenter:
        """Learn the 20/40/60/80% quantiles of recency, purchase days and total spend (``y`` is ignored)."""
        values = _rfm_values(features)
        if len(features) == 0:
            raise ValueError("features: no rows to fit on")
        self.edges_ = {
            name: tuple(float(e) for e in np.quantile(column, QUANTILES)) for name, column in values.items()
        }
        self.columns_ = list(COLUMNS.values())
        self.n_customers_ = len(features)
        return self

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """r_score, f_score, m_score, fm_score (1..5) and rfm_segment per row, on the fitted edges."""
        check_is_fitted(self, msg=NOT_FITTED)
        values = _rfm_values(features)
        r = 5 - np.searchsorted(self.edges_["recency"], values["recency"], side="right")
        f = 1 + np.searchsorted(self.edges_["frequency"], values["frequency"], side="left")
        m = 1 + np.searchsorted(self.edges_["monetary"], values["monetary"], side="left")
        fm = fm_score(f, m)
        return pd.DataFrame(
            {
                "r_score": r.astype("int64"),
                "f_score": f.astype("int64"),
                "m_score": m.astype("int64"),
                "fm_score": fm.astype("int64"),
                "rfm_segment": _LOOKUP[r - 1, fm - 1],
            },
            index=features.index,
        )

    def definition(self) -> dict[str, Any]:
        """The fitted definition, JSON-able, for logging with the model: columns, edges, score and rules."""
        check_is_fitted(self, msg=NOT_FITTED)
        return {
            "family": "rfm",
            "scheme_version": SCHEME_VERSION,
            "columns": {
                "recency": f"{COLUMNS['recency']} (lower is better)",
                "frequency": f"{COLUMNS['frequency']} + 1 (purchase days)",
                "monetary": COLUMNS["monetary"],
            },
            "quantiles": list(QUANTILES),
            "edges": {name: list(edges) for name, edges in self.edges_.items()},
            "score": "1 + number of edges strictly beaten (R: edges above the value; F, M: edges below)",
            "fm_score": "(F + M) / 2 rounded half up",
            "rules": [{"segment": rule.name, "r": list(rule.r), "fm": list(rule.fm)} for rule in RULES],
            "fitted_customers": self.n_customers_,
        }


def _rfm_values(features: pd.DataFrame) -> dict[str, np.ndarray]:
    """The three scored quantities as float arrays; clear errors for a missing, non-numeric or empty value."""
    check_frame(features, "features")
    values = {}
    for name, column in COLUMNS.items():
        if column not in features.columns:
            raise ValueError(f"missing column '{column}'")
        try:
            array = features[column].to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError(f"column '{column}': expected numbers, got {features[column].dtype}") from None
        if np.isnan(array).any():
            raise ValueError(f"column '{column}': {int(np.isnan(array).sum())} missing values (NaN)")
        values[name] = array + 1.0 if name == "frequency" else array
    return values
