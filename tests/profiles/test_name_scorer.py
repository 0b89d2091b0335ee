"""The booking desk's name scorer gives Splink's own probabilities: the same candidates and the same
match probability as ``Linker.inference.predict_between`` with the same model and blocking rules."""

from __future__ import annotations

import json
import random
from typing import Any

import duckdb
import pandas as pd
import pytest
from splink import DuckDBAPI, Linker, block_on

from crm_analytics.profiles.level_conditions import UnsupportedConditionError, compile_condition
from crm_analytics.profiles.lookup import LOOKUP_BLOCKS, query_record
from crm_analytics.profiles.name_scorer import NameScorer, compile_scoring_sql
from crm_analytics.profiles.records import MATCH_COLUMNS
from crm_analytics.profiles.tables import MODEL, RECORDS
from tests.profiles.conftest import LinkedDemo

ENGINES = ("python", "duckdb")


def splink_scores(records: pd.DataFrame, model: dict[str, Any], query: dict[str, Any]) -> dict[str, float]:
    """The reference: Splink scoring the query against the blocked stored records."""
    db = DuckDBAPI()
    stored = db.register(records[["unique_id", *MATCH_COLUMNS]].copy())
    asked = db.register(pd.DataFrame([{"unique_id": "query", **query}])[["unique_id", *MATCH_COLUMNS]])
    linker = Linker(stored, model, log_level="ERROR")
    scored = linker.inference.predict_between(
        asked,
        stored,
        blocking_rules_to_generate_predictions=[block_on(*pair) for pair in LOOKUP_BLOCKS],
        warning_mode="never",
    ).as_pandas_dataframe()
    other = scored["unique_id_r"].where(scored["unique_id_l"] == "query", scored["unique_id_l"])
    return dict(zip(other.astype(str), scored["match_probability"].astype(float), strict=True))


def desk_queries(records: pd.DataFrame, count: int) -> list[dict[str, Any]]:
    """What a desk types: names as written, with typos, and one or two other details, some wrong."""
    rng = random.Random(5)
    named = records.dropna(subset=["first_name", "last_name"]).sample(count, random_state=5)
    queries = []
    for row in named.itertuples():
        first, last = str(row.first_name), str(row.last_name)
        if rng.random() < 0.4:
            first = first[:-1] + "x"  # a typo
        if rng.random() < 0.2:
            last = last[1:]
        details: dict[str, Any] = {"first_name": first.title(), "last_name": last.upper()}
        for contact in ("email", "phone"):  # sometimes on record, sometimes another one
            value = getattr(row, contact)
            if isinstance(value, str) and rng.random() < 0.3:
                details[contact] = (
                    value if rng.random() < 0.5 else f"9{value}" if contact == "phone" else f"x{value}"
                )
        for column in rng.sample(["postcode", "city", "street", "birth_date"], k=rng.choice([1, 2])):
            value = getattr(row, column)
            wrong = "1970-01-01" if column == "birth_date" else "Elsewhere"
            details[column] = value if isinstance(value, str) and rng.random() < 0.8 else wrong
        queries.append(query_record(details))
    return queries


@pytest.fixture(scope="module")
def stored(linked_demo: LinkedDemo) -> tuple[pd.DataFrame, dict[str, Any]]:
    records = linked_demo.warehouse.ibis.table(RECORDS).execute()
    model = json.loads(linked_demo.warehouse.ibis.table(MODEL).execute().iloc[-1]["settings_json"])
    return records, model


def unobserved(model: dict[str, Any]) -> dict[str, Any]:
    """The model as a small chain's training leaves it: a level never observed (Splink then uses a
    floor probability for it) and an m probability of almost 0."""
    changed = json.loads(json.dumps(model))
    changed["comparisons"][0]["comparison_levels"][2]["m_probability"] = (
        "level not observed in training dataset"
    )
    changed["comparisons"][1]["comparison_levels"][3]["m_probability"] = 1e-250
    return changed


@pytest.mark.parametrize("trained", ["as built", "partly"])
def test_the_scorer_gives_splinks_probabilities(
    stored: tuple[pd.DataFrame, dict[str, Any]], trained: str
) -> None:
    records, built = stored
    model = built if trained == "as built" else unobserved(built)
    scorers = {
        engine: NameScorer(records, model, MATCH_COLUMNS, LOOKUP_BLOCKS, engine=engine) for engine in ENGINES
    }
    assert [scorer.engine for scorer in scorers.values()] == list(ENGINES)  # ours all run in Python
    candidates = 0
    for query in desk_queries(records, 40):
        splinks = splink_scores(records, model, query)
        for engine, scorer in scorers.items():
            ours = scorer.score(query)
            assert set(ours) == set(splinks), (engine, query)  # the same blocked candidates
            for unique_id, probability in splinks.items():
                assert ours[unique_id] == pytest.approx(probability, rel=1e-9, abs=1e-12), (engine, query)
        candidates += len(splinks)
    assert candidates >= 40  # most queries found their person at least


def test_models_with_term_frequency_adjustments_are_refused(
    stored: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    _, model = stored
    adjusted = json.loads(json.dumps(model))
    adjusted["comparisons"][0]["comparison_levels"][1]["tf_adjustment_column"] = "first_name"
    with pytest.raises(ValueError, match="term-frequency adjustments are not supported"):
        compile_scoring_sql(adjusted, MATCH_COLUMNS)


CONDITIONS = (
    '"a_l" IS NULL OR "a_r" IS NULL',
    '"a_l" = "a_r"',
    'jaro_winkler_similarity("a_l", "a_r") >= 0.92',
    'jaro_winkler_similarity("a_l", "a_r") >= 0.8',
    'jaro_similarity("a_l", "a_r") > 0.9',
    'levenshtein("a_l", "a_r") <= 2',
    'NOT ("a_l" = "a_r") AND levenshtein("a_l", "a_r") <= 1',
    'jaro_winkler_similarity("a_l", "a_r") >= 0.9666666666666667',  # DuckDB's value for NEAR_TIE
)
NEAR_TIE = ("4elmgrove", "4lemgrove")  # rapidfuzz: 0.9666666666666666, DuckDB: 0.9666666666666667


def test_conditions_in_python_answer_as_duckdb_does(stored: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    """Every condition on real names and streets, with typos, NULLs and empty strings (where
    rapidfuzz and DuckDB differ, DuckDB is asked)."""
    records, _ = stored
    values = pd.concat([records["first_name"], records["last_name"], records["street"]]).dropna().unique()
    rng = random.Random(3)
    pairs = [(a, a[:-1] + rng.choice("aeiou") if len(a) > 2 else a) for a in values[:1500]]
    pairs += [(rng.choice(values), rng.choice(values)) for _ in range(1500)]
    pairs += [("", ""), ("a", ""), (None, "a"), ("a", None), (None, None), NEAR_TIE]
    db = duckdb.connect()
    frame = pd.DataFrame(pairs, columns=["a_l", "a_r"], dtype=object).reset_index()
    db.register("frame", frame)

    asked: list[tuple[str, str]] = []

    def exact(function: str, left: str, right: str) -> float:
        asked.append((left, right))
        (value,) = db.execute(f"SELECT {function}($1, $2)", [left, right]).fetchall()[0]
        return float(value)

    for sql in CONDITIONS:
        ours = compile_condition(sql, exact)
        theirs = db.execute(f"SELECT COALESCE({sql}, false) FROM frame ORDER BY index").fetchall()
        answers = [ours({"a_l": a, "a_r": b}) for a, b in pairs]
        assert answers == [bool(row[0]) for row in theirs], sql
    assert NEAR_TIE in asked  # settled by DuckDB
    assert ("", "") in asked


def test_conditions_outside_the_supported_set_are_refused() -> None:
    with pytest.raises(UnsupportedConditionError, match="not evaluated outside DuckDB"):
        compile_condition('damerau_levenshtein("a_l", "a_r") <= 1', lambda *_: 0.0)
    with pytest.raises(UnsupportedConditionError, match="a column compared with a number"):
        compile_condition('"a_l" = 1', lambda *_: 0.0)
