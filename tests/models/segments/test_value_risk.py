"""Value-and-risk segmenter: the four quadrants, the boundaries, the stored threshold and the errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from crm_analytics.models.segments.value_risk import SEGMENT_NAMES, ValueRiskSegmenter


def scores(clv: list[float], churn: list[float]) -> pd.DataFrame:
    index = pd.Index([f"c{i:02d}" for i in range(len(clv))], name="customer_id")
    return pd.DataFrame({"clv": clv, "churn_probability": churn}, index=index)


def population() -> pd.DataFrame:
    """CLV 0..100 in steps of 10 (80% quantile = 80), P(churn) spread over [0, 1]."""
    return scores([10.0 * i for i in range(11)], [i / 10 for i in range(11)])


def test_threshold_is_the_value_quantile_of_clv_and_is_stored() -> None:
    segmenter = ValueRiskSegmenter().fit(population())
    assert segmenter.value_threshold_ == pytest.approx(80.0)
    assert ValueRiskSegmenter(value_quantile=0.5).fit(population()).value_threshold_ == pytest.approx(50.0)
    # scoring later uses the stored amount, whatever the new population looks like
    rich = scores([1_000.0, 2_000.0], [0.1, 0.1])
    assert segmenter.transform(rich)["value_tier"].tolist() == ["high", "high"]
    assert segmenter.value_threshold_ == pytest.approx(80.0)


@pytest.mark.parametrize(
    ("clv", "churn", "tier", "risk", "segment"),
    [
        (90.0, 0.9, "high", "at risk", "High value, at risk"),
        (90.0, 0.1, "high", "safe", "High value, safe"),
        (10.0, 0.9, "low", "at risk", "Low value, at risk"),
        (10.0, 0.1, "low", "safe", "Low value, safe"),
    ],
)
def test_each_quadrant(clv: float, churn: float, tier: str, risk: str, segment: str) -> None:
    scored = ValueRiskSegmenter().fit(population()).transform(scores([clv], [churn]))
    assert scored.iloc[0].tolist() == [tier, risk, segment]


def test_on_a_threshold_counts_as_high_value_and_at_risk() -> None:
    segmenter = ValueRiskSegmenter(churn_threshold=0.3).fit(population())
    scored = segmenter.transform(
        scores([80.0, np.nextafter(80.0, 0), 80.0, 0.0], [0.3, 0.3, np.nextafter(0.3, 0), 0.0])
    )
    assert scored["value_tier"].tolist() == ["high", "low", "high", "low"]
    assert scored["churn_risk"].tolist() == ["at risk", "at risk", "safe", "safe"]
    assert scored["value_risk_segment"].tolist() == [
        "High value, at risk",
        "Low value, at risk",
        "High value, safe",
        "Low value, safe",
    ]


def test_output_keeps_the_index_and_uses_the_four_names() -> None:
    data = population()
    scored = ValueRiskSegmenter().fit(data).transform(data)
    pd.testing.assert_index_equal(scored.index, data.index)
    assert scored.columns.tolist() == ["value_tier", "churn_risk", "value_risk_segment"]
    assert set(scored["value_risk_segment"]) <= set(SEGMENT_NAMES)
    assert scored["value_risk_segment"].value_counts().to_dict() == {
        "Low value, at risk": 3,  # clv 50..70 with P(churn) .5 to .7
        "Low value, safe": 5,
        "High value, at risk": 3,  # clv 80..100
    }


@pytest.mark.parametrize("name", ["value_quantile", "churn_threshold"])
@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, 1.5, True, "half"])
def test_parameters_out_of_range_are_named(name: str, value: object) -> None:
    segmenter = ValueRiskSegmenter(**{name: value})
    with pytest.raises(ValueError, match=f"{name}: must be a number strictly between 0 and 1"):
        segmenter.fit(population())


def test_columns_and_values_are_checked() -> None:
    segmenter = ValueRiskSegmenter().fit(population())
    with pytest.raises(ValueError, match="missing column 'clv'"):
        ValueRiskSegmenter().fit(population().drop(columns="clv"))
    with pytest.raises(ValueError, match="missing column 'churn_probability'"):
        segmenter.transform(population().drop(columns="churn_probability"))
    with pytest.raises(ValueError, match=r"column 'clv': 1 missing values \(NaN\)"):
        ValueRiskSegmenter().fit(scores([1.0, np.nan], [0.1, 0.2]))
    with pytest.raises(ValueError, match=r"column 'churn_probability': 1 missing values \(NaN\)"):
        segmenter.transform(scores([1.0, 2.0], [np.nan, 0.2]))
    with pytest.raises(ValueError, match=r"column 'churn_probability': probabilities must be in \[0, 1\]"):
        segmenter.transform(scores([1.0, 2.0], [0.2, 1.2]))
    with pytest.raises(ValueError, match=r"probabilities must be in \[0, 1\], got -0.1"):
        segmenter.transform(scores([1.0], [-0.1]))
    with pytest.raises(ValueError, match="column 'clv': infinite values"):
        segmenter.transform(scores([np.inf], [0.1]))
    with pytest.raises(ValueError, match="column 'clv': expected numbers"):
        segmenter.transform(population().assign(clv="high"))
    with pytest.raises(ValueError, match="no rows"):
        ValueRiskSegmenter().fit(population().iloc[:0])
    # the probability bounds themselves are valid
    assert segmenter.transform(scores([1.0, 1.0], [0.0, 1.0]))["churn_risk"].tolist() == ["safe", "at risk"]


def test_unfitted_segmenter_says_so() -> None:
    segmenter = ValueRiskSegmenter()
    assert repr(segmenter) == "ValueRiskSegmenter(value_quantile=0.8, churn_threshold=0.5, not fitted)"
    with pytest.raises(NotFittedError, match="ValueRiskSegmenter is not fitted yet; call fit first"):
        segmenter.transform(population())
    with pytest.raises(NotFittedError, match="not fitted"):
        segmenter.definition()
    assert repr(segmenter.fit(population())).endswith("fitted)")
    assert "not fitted" not in repr(segmenter)


def test_definition_round_trips_through_json() -> None:
    segmenter = ValueRiskSegmenter(value_quantile=0.9, churn_threshold=0.4).fit(population())
    definition = json.loads(json.dumps(segmenter.definition()))
    assert definition["value_threshold"] == pytest.approx(90.0)
    assert (definition["value_quantile"], definition["churn_threshold"]) == (0.9, 0.4)
    assert [s["segment"] for s in definition["segments"]] == list(SEGMENT_NAMES)
    assert definition["fitted_customers"] == 11
    assert segmenter.columns_ == ["clv", "churn_probability"]
