"""Scoring one booking-desk query against the stored records with a trained Splink model, fast.

Splink's ``predict_between`` is the reference (``tests/profiles/test_name_scorer.py`` checks that both
give the same probabilities), but a call builds and runs ~15 SQL statements and parses them with
sqlglot: 50-105 ms per look-up on the 2,000-guest demo (5,477 records), against the booking desk's
30 ms p99 (#16). Measured on the same records: this module takes ~7 ms (a loaded machine), so it is
hand-written around Splink's own pieces (its settings objects give each comparison level's SQL
condition and match weight):

- blocking is a dictionary look-up per blocking pair (built once), so a query touches only its
  candidates, however many records the chain has;
- the candidates are scored by one DuckDB statement, compiled once from the model: each comparison's
  levels become a ``CASE`` of their SQL conditions (DuckDB evaluates Splink's own ``jaro_winkler`` and
  ``levenshtein`` conditions), summed with the prior's weight into the Fellegi-Sunter match weight
  ``w``, and the probability is ``2^w / (1 + 2^w)``, as Splink's predict computes them.

Models with term-frequency adjustments are refused (ours have none): their weights need the
frequency tables, which this does not carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from splink import SettingsCreator
from splink.internals.misc import prob_to_match_weight


class NameScorer:
    """Match probabilities of a query record against the blocked stored records, one query at a time
    (not thread-safe: callers serialise queries)."""

    def __init__(
        self,
        records: pd.DataFrame,
        model: dict[str, Any],
        columns: Sequence[str],
        blocks: Sequence[tuple[str, ...]],
    ) -> None:
        self._columns = list(columns)
        stored = records[["unique_id", *self._columns]].astype(object)
        self._rows = stored.where(stored.notna(), None).to_numpy(dtype=object)
        self._blocks = [
            (pair, records.groupby(list(pair), dropna=True, sort=False).indices) for pair in blocks
        ]
        self._sql = compile_scoring_sql(model, self._columns)
        self._db = duckdb.connect()

    def score(self, query: dict[str, Any]) -> dict[str, float]:
        """The match probability of each stored record blocked with ``query`` (by unique id)."""
        found: set[int] = set()
        for pair, index in self._blocks:
            key = tuple(query.get(column) for column in pair)
            if all(key) and (positions := index.get(key if len(key) > 1 else key[0])) is not None:
                found.update(positions.tolist())
        if not found:
            return {}
        names = ["unique_id", *self._columns]
        candidates = [dict(zip(names, self._rows[i], strict=True)) for i in sorted(found)]
        values = [query.get(column) for column in self._columns]
        scored = self._db.execute(self._sql, [*values, candidates]).fetchall()
        return {str(uid): probability(weight) for uid, weight in scored if weight is not None}


def probability(match_weight: float) -> float:
    """Splink's match probability from a match weight (log2 of the Bayes factor), computed as it does
    (no overflow either way)."""
    if match_weight >= 0:
        return float(1.0 / (1.0 + np.exp2(-match_weight)))
    return float(np.exp2(match_weight) / (1.0 + np.exp2(match_weight)))


def compile_scoring_sql(model: dict[str, Any], columns: Sequence[str]) -> str:
    """One DuckDB statement: ``$1..$n`` the query's ``columns``, ``$n+1`` the candidates as a list of
    structs; it returns each candidate's ``unique_id`` and match weight (NULL where the model has an
    untrained level, as in Splink). The weights are Splink's own (its settings objects: clamping,
    defaults and unobserved levels included)."""
    settings = SettingsCreator.from_path_or_dict(model).get_settings("duckdb")
    prior = settings.core_model_settings.probability_two_random_records_match
    weights = [_literal(prob_to_match_weight(prior))]
    for comparison in settings.comparisons:
        if comparison._has_tf_adjustments:
            raise ValueError(
                f"{comparison.output_column_name}: term-frequency adjustments are not supported by the "
                "look-up scorer"
            )
        cases = []
        for level in comparison.comparison_levels:
            condition = level.sql_condition.strip()
            weight = _literal(level._match_weight)
            cases.append(
                f"ELSE {weight}" if condition.upper() == "ELSE" else f"WHEN {condition} THEN {weight}"
            )
        weights.append(f"(CASE {' '.join(cases)} END)")
    query = ", ".join(f"${i}::VARCHAR AS {column}_l" for i, column in enumerate(columns, start=1))
    candidate = ", ".join(f"{column}::VARCHAR AS {column}_r" for column in columns)
    return (
        f"WITH l AS (SELECT {query}), "
        f"r AS (SELECT unique_id, {candidate} FROM (SELECT UNNEST(${len(columns) + 1}, recursive := true))) "
        f"SELECT r.unique_id, {' + '.join(weights)} AS match_weight FROM l, r"
    )


def _literal(weight: float | None) -> str:
    if weight is None:
        return "NULL::DOUBLE"
    return f"'{weight!r}'::DOUBLE"  # quoted, so 'inf' and '-inf' read as DOUBLE too
