"""Splink comparison-level conditions (DuckDB SQL) evaluated in Python, for the few candidates of one
booking-desk query.

DuckDB spends ~3 ms planning the scoring statement of every look-up (measured: 3.5-4.5 ms a call
for 1 or 10 candidates, 0.2 ms for ``SELECT 1``), while the conditions themselves are a handful of
comparisons. So each condition is parsed once with sqlglot (Splink's own SQL parser) into a Python
function; the string functions are rapidfuzz's implementations of the algorithms DuckDB uses (its
``jaro_winkler_similarity`` comes from the same author's library). Where the two could disagree,
DuckDB answers: an empty string (DuckDB's Jaro similarity of two empty strings is 0, rapidfuzz's 1)
and a similarity within 1e-9 of the threshold it is compared with (the two differ in the last bit on
about 1 pair in 1,400). SQL's three-valued logic is kept: NULL compares as unknown, and a level's
condition must be true to apply.

Anything else (another function, a cast, arithmetic) raises :class:`UnsupportedConditionError`; the scorer
then runs the conditions in DuckDB instead.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import sqlglot
from rapidfuzz.distance import Jaro, JaroWinkler, Levenshtein
from sqlglot import exp

Pair = Mapping[str, Any]  # "first_name_l" -> the query's value, "first_name_r" -> the candidate's
Expression = Callable[[Pair], Any]
Exact = Callable[[str, str, str], float]  # DuckDB's own answer: (function, left, right) -> value
NEAR = 1e-9

SIMILARITIES: dict[str, Callable[[str, str], float]] = {
    "jaro_winkler_similarity": JaroWinkler.similarity,
    "jaro_similarity": Jaro.similarity,
}
DISTANCES: dict[str, Callable[[str, str], int]] = {"levenshtein": Levenshtein.distance}
COMPARISONS: dict[type[exp.Expression], Callable[[Any, Any], bool]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
}


class UnsupportedConditionError(ValueError):
    """A condition this module cannot evaluate exactly as DuckDB does."""


class Similarity(float):
    """A similarity computed by rapidfuzz, with how to ask DuckDB for the exact value."""

    function: str
    arguments: tuple[str, str]

    @classmethod
    def of(cls, value: float, function: str, left: str, right: str) -> Similarity:
        similarity = cls(value)
        similarity.function, similarity.arguments = function, (left, right)
        return similarity


def compile_condition(sql: str, exact: Exact) -> Callable[[Pair], bool]:
    """The condition as a function of a pair's values: True only where SQL would say true."""
    parsed = sqlglot.parse_one(sql, read="duckdb")
    if not isinstance(parsed, exp.Expression):
        raise UnsupportedConditionError(f"{sql}: not an expression")
    compiled = _compile(parsed, exact)
    return lambda pair: compiled(pair) is True


def _compile(node: exp.Expression, exact: Exact) -> Expression:
    if isinstance(node, exp.Paren):
        return _compile(node.this, exact)
    if isinstance(node, exp.Column):
        name = node.name
        return lambda pair: pair[name]
    if isinstance(node, exp.Literal):
        value: Any = node.this if node.is_string else float(node.this)
        return lambda _pair: value
    if isinstance(node, exp.Null):
        return lambda _pair: None
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        operand = _compile(node.this, exact)
        return lambda pair: operand(pair) is None
    if isinstance(node, exp.Not):
        inner = _compile(node.this, exact)
        return lambda pair: None if (value := inner(pair)) is None else not value
    if isinstance(node, exp.And | exp.Or):
        return _logical(node, exact)
    if type(node) in COMPARISONS:
        return _comparison(node, exact)
    return _function(node, exact)


def _logical(node: exp.And | exp.Or, exact: Exact) -> Expression:
    left, right = _compile(node.this, exact), _compile(node.expression, exact)
    decisive = isinstance(node, exp.Or)  # OR: one true decides; AND: one false decides

    def evaluate(pair: Pair) -> bool | None:
        values = (left(pair), right(pair))
        if decisive in values:
            return decisive
        return None if None in values else not decisive

    return evaluate


def _comparison(node: exp.Expression, exact: Exact) -> Expression:
    sides = (node.this, node.expression)
    if any(isinstance(side, exp.Column) for side in sides) and any(
        isinstance(side, exp.Literal) and not side.is_string for side in sides
    ):  # DuckDB would cast the text; Python would fail
        raise UnsupportedConditionError(f"{node.sql(dialect='duckdb')}: a column compared with a number")
    compare = COMPARISONS[type(node)]
    left, right = _compile(node.this, exact), _compile(node.expression, exact)

    def evaluate(pair: Pair) -> bool | None:
        a, b = _settled(left(pair), right(pair), exact)
        return None if a is None or b is None else compare(a, b)

    return evaluate


def _settled(a: Any, b: Any, exact: Exact) -> tuple[Any, Any]:
    """The operands, with DuckDB's exact value for a similarity too close to what it is compared with."""
    for value, other in ((a, b), (b, a)):
        if isinstance(value, Similarity) and isinstance(other, float) and abs(value - other) < NEAR:
            settled = exact(value.function, *value.arguments)
            return (settled, b) if value is a else (a, settled)
    return a, b


def _function(node: exp.Expression, exact: Exact) -> Expression:
    name, arguments = _call(node)
    if len(arguments) != 2 or (name not in SIMILARITIES and name not in DISTANCES):
        raise UnsupportedConditionError(f"{node.sql(dialect='duckdb')}: not evaluated outside DuckDB")
    first, second = (_compile(argument, exact) for argument in arguments)
    if name in DISTANCES:
        distance = DISTANCES[name]
        return lambda pair: _strings(pair, first, second, lambda a, b: float(distance(a, b)))
    similarity = SIMILARITIES[name]

    def evaluate(pair: Pair) -> float | None:
        a, b = first(pair), second(pair)
        if a is None or b is None:
            return None
        if not a or not b:  # DuckDB's own convention for empty strings
            return exact(name, a, b)
        return Similarity.of(similarity(a, b), name, a, b)

    return evaluate


def _strings(pair: Pair, first: Expression, second: Expression, apply: Callable[[str, str], float]) -> Any:
    a, b = first(pair), second(pair)
    return None if a is None or b is None else apply(a, b)


def _call(node: exp.Expression) -> tuple[str, list[exp.Expression]]:
    """A function call's DuckDB name and arguments (sqlglot names some functions with classes)."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower(), list(node.expressions)
    if isinstance(node, exp.JarowinklerSimilarity):
        return "jaro_winkler_similarity", [node.this, node.expression]
    if isinstance(node, exp.Levenshtein) and {k for k, v in node.args.items() if v} <= {"this", "expression"}:
        return "levenshtein", [node.this, node.expression]  # no costs or maximum given
    raise UnsupportedConditionError(f"{node.sql(dialect='duckdb')}: not evaluated outside DuckDB")
