"""Scoring one booking-desk query against the stored records with a trained Splink model, fast.

Splink's ``predict_between`` is the reference (``tests/profiles/test_name_scorer.py`` checks that both
give the same probabilities), but a call builds and runs ~15 SQL statements and parses them with
sqlglot: 50-105 ms per look-up on the 2,000-guest demo (5,477 records), against the booking desk's
30 ms p99 (#16). So this is hand-written around Splink's own pieces (its settings objects give each
comparison level's SQL condition and match weight):

- blocking is a dictionary look-up per blocking pair (built once), so a query touches only its
  candidates, however many records the chain has;
- each candidate's match weight ``w`` is the prior's weight plus, per comparison, the weight of the
  first level whose condition holds; the probability is ``2^w / (1 + 2^w)``, as Splink's predict
  computes them. The conditions run in Python (``level_conditions.py``: ~0.1 ms a look-up) or, for
  a condition that module cannot evaluate exactly, in one DuckDB statement compiled from the model
  (each comparison a ``CASE`` of its levels: ~3.5 ms a look-up, nearly all of it DuckDB planning the
  statement).

Models with term-frequency adjustments are refused (ours have none): their weights need the
frequency tables, which this does not carry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from splink import SettingsCreator
from splink.internals.misc import prob_to_match_weight
from splink.internals.settings import Settings

from crm_analytics.profiles.level_conditions import (
    DISTANCES,
    SIMILARITIES,
    UnsupportedConditionError,
    compile_condition,
)

Level = tuple[Callable[[dict[str, Any]], bool] | None, float | None]  # condition (None: ELSE), weight


class NameScorer:
    """Match probabilities of a query record against the blocked stored records, one query at a time
    (not thread-safe: callers serialise queries)."""

    def __init__(
        self,
        records: pd.DataFrame,
        model: dict[str, Any],
        columns: Sequence[str],
        blocks: Sequence[tuple[str, ...]],
        *,
        engine: str = "python",
    ) -> None:
        """``engine``: where the conditions run, ``python`` (DuckDB for a model it cannot evaluate)
        or ``duckdb``."""
        self._columns = list(columns)
        stored = records[["unique_id", *self._columns]].astype(object)
        self._rows = stored.where(stored.notna(), None).to_numpy(dtype=object)
        self._blocks = [
            (pair, records.groupby(list(pair), dropna=True, sort=False).indices) for pair in blocks
        ]
        settings = _settings(model)
        self._sql = compile_scoring_sql(settings, self._columns)
        self._db = duckdb.connect()
        self._prior = prob_to_match_weight(settings.core_model_settings.probability_two_random_records_match)
        self._comparisons: list[list[Level]] | None = None
        if engine == "python":
            try:
                self._comparisons = [
                    [
                        (self._condition(level.sql_condition), level._match_weight)
                        for level in c.comparison_levels
                    ]
                    for c in settings.comparisons
                ]
            except UnsupportedConditionError:
                self._comparisons = None
        self.engine = "python" if self._comparisons is not None else "duckdb"

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
        if self._comparisons is None:
            values = [query.get(column) for column in self._columns]
            scored = self._db.execute(self._sql, [*values, candidates]).fetchall()
        else:
            scored = [(c["unique_id"], self._weight(query, c)) for c in candidates]
        return {str(uid): probability(weight) for uid, weight in scored if weight is not None}

    def _weight(self, query: dict[str, Any], candidate: dict[str, Any]) -> float | None:
        pair = {f"{c}_l": query.get(c) for c in self._columns} | {
            f"{c}_r": candidate[c] for c in self._columns
        }
        total = self._prior
        for levels in self._comparisons or []:
            weight = next((w for condition, w in levels if condition is None or condition(pair)), None)
            if weight is None:  # an untrained level, or no level applies: NULL, as in SQL
                return None
            total += weight
        return total

    def _condition(self, sql: str) -> Callable[[dict[str, Any]], bool] | None:
        return None if sql.strip().upper() == "ELSE" else compile_condition(sql, self._exact)

    def _exact(self, function: str, left: str, right: str) -> float:
        """DuckDB's own value of a string function (for the cases rapidfuzz could differ on)."""
        if function not in SIMILARITIES and function not in DISTANCES:
            raise UnsupportedConditionError(f"{function}: not a known string function")
        row = self._db.execute(f"SELECT {function}($1, $2)", [left, right]).fetchone()
        return float(row[0]) if row and row[0] is not None else float("nan")


def probability(match_weight: float) -> float:
    """Splink's match probability from a match weight (log2 of the Bayes factor), computed as it does
    (no overflow either way)."""
    if match_weight >= 0:
        return float(1.0 / (1.0 + np.exp2(-match_weight)))
    return float(np.exp2(match_weight) / (1.0 + np.exp2(match_weight)))


def _settings(model: dict[str, Any]) -> Settings:
    """Splink's settings objects for the model; refuses term-frequency adjustments."""
    settings = SettingsCreator.from_path_or_dict(model).get_settings("duckdb")
    for comparison in settings.comparisons:
        if comparison._has_tf_adjustments:
            raise ValueError(
                f"{comparison.output_column_name}: term-frequency adjustments are not supported by the "
                "look-up scorer"
            )
    return settings


def compile_scoring_sql(settings: Settings | dict[str, Any], columns: Sequence[str]) -> str:
    """One DuckDB statement: ``$1..$n`` the query's ``columns``, ``$n+1`` the candidates as a list of
    structs; it returns each candidate's ``unique_id`` and match weight (NULL where the model has an
    untrained level: that candidate is not scored)."""
    if isinstance(settings, dict):
        settings = _settings(settings)
    prior = settings.core_model_settings.probability_two_random_records_match
    weights = [_literal(prob_to_match_weight(prior))]
    for comparison in settings.comparisons:
        cases = []
        for level in comparison.comparison_levels:
            condition = level.sql_condition.strip()
            weight = _literal(level._match_weight)
            is_else = condition.upper() == "ELSE"
            cases.append(f"ELSE {weight}" if is_else else f"WHEN {condition} THEN {weight}")
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
