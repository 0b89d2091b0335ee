"""The three segment families: RFM, value-and-risk and behavioural clusters.

Each is registered as its own model whose versions are the versioned definitions; a segmentation has no
holdout to gate on, so every build becomes ``@champion``. Their pyfunc maps a segmenter's input columns
to one ``segment`` column; the segments build (``segments.build``) fits all three together and stores
the membership.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from crm_analytics.models.family import ModelFamily, Segmentation
from crm_analytics.models.segments.clusters import BehaviourClusters
from crm_analytics.models.segments.rfm import RFMSegmenter
from crm_analytics.models.segments.value_risk import ValueRiskSegmenter


class SegmentPyfunc(PythonModel):
    """A fitted segmenter as a pyfunc: its input columns in, one ``segment`` column out."""

    def __init__(self, segmenter: Any, column: str) -> None:
        self.segmenter = segmenter
        self.column = column

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        segments = self.segmenter.transform(model_input)[self.column]
        return pd.DataFrame({"segment": segments.to_numpy()})


RFM = ModelFamily(
    key="rfm",
    name="crm-segments-rfm",
    summary="RFM quintile scores and named segments",
    pyfunc=SegmentPyfunc,
    segmentation=Segmentation(lambda seed: RFMSegmenter(), "rfm_segment", fit_on="features"),
)
VALUE_RISK = ModelFamily(
    key="value_risk",
    name="crm-segments-value-risk",
    summary="the CLV and churn champions' scores in four quadrants",
    pyfunc=SegmentPyfunc,
    segmentation=Segmentation(lambda seed: ValueRiskSegmenter(), "value_risk_segment", fit_on="scores"),
)
BEHAVIOUR = ModelFamily(
    key="behaviour",
    name="crm-segments-behaviour",
    summary="behavioural clusters, k chosen by stability and silhouette, checked on two halves",
    pyfunc=SegmentPyfunc,
    segmentation=Segmentation(
        lambda seed: BehaviourClusters(seed=seed), "cluster_name", fit_on="features", stability=True
    ),
)
