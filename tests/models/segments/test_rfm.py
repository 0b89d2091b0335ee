"""RFM segmenter: the rules as a partition, scores on stored edges, ties, errors, and CDNOW_sample shares."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from crm_analytics.models.segments import rfm
from crm_analytics.models.segments.rfm import (
    RULES,
    SEGMENT_NAMES,
    RFMSegmenter,
    SegmentRule,
    fm_score,
    rules_table,
    segment_grid,
)
from tests.models.test_churn_and_value import cdnow_features

# The brief's rules written out cell by cell (rows R5..R1, columns FM1..FM5): any change to RULES fails here.
EXPECTED_GRID = {
    5: ("New", "Potential loyalists", "Potential loyalists", "Champions", "Champions"),
    4: ("Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Loyal"),
    3: ("Need attention", "Need attention", "Need attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),
    1: ("Lost", "Lost", "At risk", "At risk", "Can't lose them"),
}


def frame(days: list[float], purchase_days: list[float], spend: list[float]) -> pd.DataFrame:
    """A feature table with the three scored columns (``frequency`` is purchase days - 1)."""
    return pd.DataFrame(
        {
            "days_since_last": days,
            "frequency": [d - 1 for d in purchase_days],
            "spend_total": spend,
        },
        index=pd.Index([f"c{i:02d}" for i in range(len(days))], name="customer_id"),
    )


def one_to_ten() -> pd.DataFrame:
    values = [float(v) for v in range(1, 11)]
    return frame(values, values, values)


def test_every_r_fm_pair_maps_to_exactly_one_of_the_ten_names() -> None:
    grid = segment_grid()
    assert len(grid) == 25
    for r, names in EXPECTED_GRID.items():
        for fm, name in enumerate(names, start=1):
            assert grid[(r, fm)] == name, (r, fm)
    assert set(grid.values()) == set(SEGMENT_NAMES)
    assert len(SEGMENT_NAMES) == 10 == len(set(SEGMENT_NAMES))


@pytest.mark.parametrize("dropped", range(len(RULES)))
def test_removing_a_rule_leaves_a_gap(dropped: int) -> None:
    with pytest.raises(ValueError, match="no rule covers"):
        segment_grid(RULES[:dropped] + RULES[dropped + 1 :])


def test_overlapping_or_out_of_range_rules_are_rejected() -> None:
    with pytest.raises(ValueError, match="'Lost' and 'Extra' both cover"):
        segment_grid((*RULES, SegmentRule("Extra", (1,), (1,))))
    with pytest.raises(ValueError, match=r"outside 1\.\.5"):
        segment_grid((*RULES, SegmentRule("Extra", (6,), (1,))))


def test_the_docstring_table_is_the_rules() -> None:
    assert rfm.__doc__ is not None
    assert rules_table() in rfm.__doc__


def test_fm_score_rounds_half_up() -> None:
    f = np.array([1, 1, 2, 4, 5, 3])
    m = np.array([1, 2, 3, 5, 5, 4])
    np.testing.assert_array_equal(fm_score(f, m), [1, 2, 3, 5, 5, 4])


def test_scores_on_a_hand_computed_example() -> None:
    # quantiles of 1..10 (linear): 2.8, 4.6, 6.4, 8.2 -> pairs of customers per score
    segmenter = RFMSegmenter().fit(one_to_ten())
    assert segmenter.edges_["recency"] == pytest.approx((2.8, 4.6, 6.4, 8.2))
    assert segmenter.edges_["frequency"] == pytest.approx((2.8, 4.6, 6.4, 8.2))  # purchase days
    scored = segmenter.transform(one_to_ten())
    assert scored.columns.tolist() == ["r_score", "f_score", "m_score", "fm_score", "rfm_segment"]
    assert scored["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # most recent -> R5
    assert scored["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scored["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scored["rfm_segment"].tolist() == [
        "New", "New", "Potential loyalists", "Potential loyalists", "Need attention",
        "Need attention", "At risk", "At risk", "Can't lose them", "Can't lose them",
    ]  # fmt: skip
    pd.testing.assert_index_equal(scored.index, one_to_ten().index)


def test_recency_direction_and_mixed_scores() -> None:
    segmenter = RFMSegmenter().fit(one_to_ten())
    champion = frame([1.0], [10.0], [10.0])  # bought yesterday, often, much
    lost = frame([10.0], [1.0], [1.0])
    assert segmenter.transform(champion).iloc[0].tolist() == [5, 5, 5, 5, "Champions"]
    assert segmenter.transform(lost).iloc[0].tolist() == [1, 1, 1, 1, "Lost"]
    mixed = segmenter.transform(frame([4.0], [10.0], [3.0])).iloc[0]  # F5, M2 -> FM 3.5 -> 4
    assert mixed.tolist() == [4, 5, 2, 4, "Loyal"]


def test_a_value_on_an_edge_takes_the_lower_score_and_ties_score_alike() -> None:
    segmenter = RFMSegmenter().fit(one_to_ten())
    on_edges = frame([2.8, 4.6, 8.2], [2.8, 4.6, 8.2], [2.8, 4.6, 8.2])
    scored = segmenter.transform(on_edges)
    assert scored["r_score"].tolist() == [4, 3, 1]  # on the edge does not beat it
    assert scored["f_score"].tolist() == [1, 2, 4]
    assert scored["m_score"].tolist() == [1, 2, 4]


def test_heavy_ties_collapse_scores_between_equal_edges() -> None:
    # seven of ten bought on one day only: purchase-day edges 1, 1, 1, 2.2
    features = frame([float(d) for d in range(1, 11)], [1.0] * 7 + [2.0, 3.0, 4.0], [10.0] * 10)
    segmenter = RFMSegmenter().fit(features)
    assert segmenter.edges_["frequency"] == pytest.approx((1.0, 1.0, 1.0, 2.2))
    scored = segmenter.transform(features)
    assert scored["f_score"].tolist() == [1] * 7 + [4, 5, 5]  # F2 and F3 empty
    assert scored["m_score"].tolist() == [1] * 10  # every edge equal: everyone fitted scores 1
    assert segmenter.transform(frame([1.0], [1.0], [10.5]))["m_score"].tolist() == [5]


def test_new_customers_are_scored_on_the_fitted_edges() -> None:
    population = one_to_ten()
    segmenter = RFMSegmenter().fit(population)
    edges = dict(segmenter.edges_)
    together = segmenter.transform(population)
    for customer in population.index:
        alone = segmenter.transform(population.loc[[customer]])
        pd.testing.assert_frame_equal(alone, together.loc[[customer]])
    newcomers = frame([100.0, 0.0], [1.0, 50.0], [0.0, 1e6])  # outside the fitted range
    assert segmenter.transform(newcomers)["rfm_segment"].tolist() == ["Lost", "Champions"]
    assert segmenter.edges_ == edges


def test_inputs_are_checked() -> None:
    features = one_to_ten()
    with pytest.raises(ValueError, match="missing column 'spend_total'"):
        RFMSegmenter().fit(features.drop(columns="spend_total"))
    segmenter = RFMSegmenter().fit(features)
    with pytest.raises(ValueError, match="missing column 'days_since_last'"):
        segmenter.transform(features.drop(columns="days_since_last"))
    with pytest.raises(ValueError, match="column 'frequency': 1 missing values"):
        segmenter.transform(features.assign(frequency=[np.nan, *features["frequency"].iloc[1:]]))
    with pytest.raises(ValueError, match="column 'spend_total': expected numbers"):
        segmenter.transform(features.assign(spend_total="a lot"))
    with pytest.raises(ValueError, match="no rows"):
        RFMSegmenter().fit(features.iloc[:0])


def test_unfitted_segmenter_says_so() -> None:
    segmenter = RFMSegmenter()
    assert repr(segmenter) == "RFMSegmenter(not fitted)"
    with pytest.raises(NotFittedError, match="not fitted yet; call fit first"):
        segmenter.transform(one_to_ten())
    with pytest.raises(NotFittedError, match="not fitted"):
        segmenter.definition()
    assert repr(segmenter.fit(one_to_ten())) == "RFMSegmenter(fitted)"


def test_definition_round_trips_through_json() -> None:
    segmenter = RFMSegmenter().fit(one_to_ten())
    definition = json.loads(json.dumps(segmenter.definition()))
    assert definition["edges"]["monetary"] == pytest.approx([2.8, 4.6, 6.4, 8.2])
    assert [rule["segment"] for rule in definition["rules"]] == list(SEGMENT_NAMES)
    assert definition["fitted_customers"] == 10
    assert segmenter.columns_ == ["days_since_last", "frequency", "spend_total"]


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return cdnow_features("sample", tmp_path_factory.mktemp("cdnow_rfm")).set_index("customer_id")


def test_cdnow_sample_segments_are_plausible(cdnow: pd.DataFrame) -> None:
    segmenter = RFMSegmenter().fit(cdnow)
    scored = segmenter.transform(cdnow)
    shares = scored["rfm_segment"].value_counts(normalize=True)
    assert len(shares) >= 6
    assert shares.max() < 0.3  # no segment swallows the base
    assert segmenter.edges_["frequency"] == (1.0, 1.0, 2.0, 3.0)  # 60% bought on one day only
    assert set(scored["f_score"]) == {1, 3, 4, 5}
    for column in ("r_score", "m_score"):  # continuous enough: about a fifth each
        assert scored[column].value_counts(normalize=True).between(0.15, 0.25).all()
    by_segment = cdnow.groupby(scored["rfm_segment"])
    spend, churned = by_segment["spend_total"].mean(), by_segment["churned"].mean()
    assert spend["Champions"] > 5 * spend["Lost"]
    assert churned["Champions"] < 0.5 < churned["Lost"]
    assert churned["Champions"] < churned["At risk"]
    assert "New" not in shares  # the CDNOW cohort's first purchases are all in Q1 1997
