"""Record linkage: which source records are the same person.

Deterministic keys first: records sharing a loyalty id, a normalised e-mail address or a normalised phone
number are linked outright (``matched_by`` names the key). Every other candidate pair is scored by a
Fellegi-Sunter model (Splink on DuckDB) comparing names (Jaro-Winkler), birth date, street, postcode,
city and the keys themselves; its m probabilities are learned by expectation maximisation, its u
probabilities from random pairs, so no labelled data is needed. Pairs at or above ``threshold`` link.
Linked records form clusters (connected components); each cluster is one customer.

Why Splink: it is the maintained open-source Fellegi-Sunter implementation, trains without labels, runs
on DuckDB here and on Spark for scale with the same settings, and its model is a JSON document (m and u
probabilities, no data values: term-frequency adjustments are not used) that can be logged and reused to
score a booking desk's lookup against the stored records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import splink.comparison_library as cl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator

from crm_analytics.profiles.ids import unified_id
from crm_analytics.profiles.records import MATCH_COLUMNS

DETERMINISTIC_KEYS = ("loyalty_id", "email", "phone")
DEFAULT_THRESHOLD = 0.9
# Candidate pairs for scoring: any shared key, or a shared name or address part.
PREDICTION_BLOCKS = (
    ("email",),
    ("phone",),
    ("loyalty_id",),
    ("first_name", "last_name"),
    ("last_name", "postcode"),
    ("first_name", "postcode"),
    ("street", "postcode"),
    ("last_name", "birth_date"),
)
TRAINING_BLOCKS = (("email",), ("postcode",))  # each trains every comparison but its own
RANDOM_PAIRS = 1_000_000


def splink_settings() -> SettingsCreator:
    """The comparisons and candidate-pair rules of the linkage model."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name", [0.92, 0.8]),
            cl.JaroWinklerAtThresholds("last_name", [0.92, 0.8]),
            cl.ExactMatch("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("loyalty_id"),
            cl.ExactMatch("birth_date"),
            cl.LevenshteinAtThresholds("street", [2]),
            cl.ExactMatch("postcode"),
            cl.ExactMatch("city"),
        ],
        blocking_rules_to_generate_predictions=[block_on(*columns) for columns in PREDICTION_BLOCKS],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def train_linker(records: pd.DataFrame, seed: int = 0) -> Linker:
    """A Splink linker over ``records`` (see ``records.match_frame``) with its parameters estimated."""
    linker = Linker(_register(records), splink_settings(), log_level=logging.ERROR)
    keys: list[str | BlockingRuleCreator] = [block_on(key) for key in ("email", "phone")]
    linker.training.estimate_probability_two_random_records_match(keys, recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=RANDOM_PAIRS, seed=seed)
    for columns in TRAINING_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*columns))
    return linker


def model_json(linker: Linker) -> dict[str, Any]:
    """The trained model as a JSON-ready dict: settings and m/u probabilities, no data values."""
    return linker.misc.save_model_to_json()


def scored_pairs(linker: Linker) -> pd.DataFrame:
    """Candidate pairs with their ``match_probability`` (ids in ``unique_id_l`` and ``unique_id_r``)."""
    predictions = linker.inference.predict(threshold_match_probability=0.01, warning_mode="never")
    frame = predictions.as_pandas_dataframe()
    return frame[["unique_id_l", "unique_id_r", "match_probability"]]


def pairs_involving(
    new: pd.DataFrame, others: pd.DataFrame, model: dict[str, Any], threshold: float
) -> pd.DataFrame:
    """Candidate pairs with at least one record in ``new`` (the rest in ``others``), scored by a stored
    model (``model_json``), at or above ``threshold``: what a full ``scored_pairs`` gives for them."""
    db = DuckDBAPI()
    left = db.register(_match_columns(new))
    linker = Linker(left, model, log_level=logging.ERROR)
    parts = [
        linker.inference.predict_within(left, threshold_match_probability=threshold, warning_mode="never")
    ]
    if len(others):
        right = db.register(_match_columns(others))
        parts.append(
            linker.inference.predict_between(
                left, right, threshold_match_probability=threshold, warning_mode="never"
            )
        )
    frames = [
        part.as_pandas_dataframe()[["unique_id_l", "unique_id_r", "match_probability"]] for part in parts
    ]
    return pd.concat(frames, ignore_index=True)


def pairs_within(records: pd.DataFrame, model: dict[str, Any], threshold: float) -> pd.DataFrame:
    """Candidate pairs among ``records`` scored by a stored model, at or above ``threshold``."""
    if len(records) < 2:
        return pd.DataFrame(columns=["unique_id_l", "unique_id_r", "match_probability"])
    db = DuckDBAPI()
    table = db.register(_match_columns(records))
    linker = Linker(table, model, log_level=logging.ERROR)
    scored = linker.inference.predict_within(
        table, threshold_match_probability=threshold, warning_mode="never"
    )
    return scored.as_pandas_dataframe()[["unique_id_l", "unique_id_r", "match_probability"]]


def deterministic_pairs(records: pd.DataFrame) -> pd.DataFrame:
    """Pairs of records sharing a key value; a chain per value is enough to connect its records."""
    parts = []
    for key in DETERMINISTIC_KEYS:
        keyed = records[records[key].notna()].sort_values([key, "unique_id"])
        same = keyed[key].to_numpy()[1:] == keyed[key].to_numpy()[:-1]
        ids = keyed["unique_id"].to_numpy()
        parts.append(pd.DataFrame({"unique_id_l": ids[:-1][same], "unique_id_r": ids[1:][same], "key": key}))
    pairs = pd.concat(parts, ignore_index=True)
    return pairs.drop_duplicates(["unique_id_l", "unique_id_r"]).assign(match_probability=1.0)


@dataclass(frozen=True)
class Clusters:
    """Each record's unified customer id and how strongly it is tied to its cluster."""

    links: pd.DataFrame  # unique_id, customer_id, match_probability, matched_by


def cluster_records(
    records: pd.DataFrame, deterministic: pd.DataFrame, scored: pd.DataFrame, threshold: float
) -> Clusters:
    """Connected components over deterministic pairs and scored pairs at or above ``threshold``."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold: must be in (0, 1], got {threshold}")
    edges = pd.concat(
        [
            deterministic.rename(columns={"key": "matched_by"}),
            scored[scored["match_probability"] >= threshold].assign(matched_by="probabilistic"),
        ],
        ignore_index=True,
    )
    ids = records["unique_id"].to_numpy()
    position = pd.Series(np.arange(len(ids)), index=ids)
    left = position[edges["unique_id_l"]].to_numpy()
    right = position[edges["unique_id_r"]].to_numpy()
    graph = coo_matrix((np.ones(len(edges)), (left, right)), shape=(len(ids), len(ids)))
    _, component = connected_components(graph, directed=False)
    smallest = pd.Series(ids).groupby(component).transform("min")
    strongest = _strongest_edge(edges, ids)
    links = pd.DataFrame(
        {
            "unique_id": ids,
            "customer_id": smallest.map(unified_id).to_numpy(),
            "match_probability": strongest["match_probability"].to_numpy(),
            "matched_by": strongest["matched_by"].to_numpy(),
        }
    )
    return Clusters(links)


def _strongest_edge(edges: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """Per record, its most probable link (deterministic keys first); unlinked records are 'single'."""
    both = pd.concat(
        [
            edges.rename(columns={"unique_id_l": "unique_id"})[
                ["unique_id", "match_probability", "matched_by"]
            ],
            edges.rename(columns={"unique_id_r": "unique_id"})[
                ["unique_id", "match_probability", "matched_by"]
            ],
        ]
    )
    both["rank"] = both["matched_by"].map({k: i for i, k in enumerate(DETERMINISTIC_KEYS)}).fillna(99)
    best = both.sort_values(["unique_id", "match_probability", "rank"], ascending=[True, False, True])
    best = best.drop_duplicates("unique_id").set_index("unique_id")
    out = best.reindex(ids)[["match_probability", "matched_by"]]
    return out.fillna({"match_probability": 1.0, "matched_by": "single"})


def _register(records: pd.DataFrame) -> Any:
    """``records`` registered with a fresh in-memory DuckDB for Splink."""
    return DuckDBAPI().register(_match_columns(records))


def _match_columns(records: pd.DataFrame) -> pd.DataFrame:
    """The id and match columns, missing values as None (stored and fresh records compare alike)."""
    columns = ["unique_id", *[c for c in MATCH_COLUMNS if c in records.columns]]
    frame = records[columns].astype(object)
    return frame.where(frame.notna(), None).reset_index(drop=True)
