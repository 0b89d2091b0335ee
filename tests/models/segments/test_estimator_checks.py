"""The three segmenters against scikit-learn's estimator checks, where their DataFrame API allows.

They read named columns of a feature table (``days_since_last``, ``clv``, ``share_channel_*``...) and
return a DataFrame of labels, and anything else is refused with a TypeError naming what was passed. The
checks that fit on an unnamed numpy array cannot apply; each is listed below with its reason. The rest
run: parameters, cloning, ``get_params``/``set_params``, nothing done in ``__init__``, ``NotFittedError``
before ``fit``, the repr, tags, and a clear refusal of sparse input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from crm_analytics.models.segments.clusters import BehaviourClusters
from crm_analytics.models.segments.rfm import RFMSegmenter
from crm_analytics.models.segments.value_risk import ValueRiskSegmenter

NUMPY = "fits on an unnamed numpy array; the segmenters read named DataFrame columns"
NOT_APPLICABLE: dict[str, str] = {
    **dict.fromkeys(
        (
            "check_complex_data",
            "check_dict_unchanged",
            "check_dont_overwrite_parameters",
            "check_dtype_object",
            "check_estimators_dtypes",
            "check_estimators_fit_returns_self",
            "check_estimators_overwrite_params",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_fit1d",
            "check_fit2d_1feature",
            "check_fit2d_1sample",
            "check_fit2d_predict1d",
            "check_fit_check_is_fitted",
            "check_fit_idempotent",
            "check_fit_score_takes_y",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_pipeline_consistency",
            "check_positive_only_tag_during_fit",
            "check_readonly_memmap_input",
            "check_transformer_data_not_an_array",
        ),
        NUMPY,
    ),
    "check_estimators_empty_data_messages": "an empty numpy array is refused as not a DataFrame (TypeError)",
    "check_estimators_nan_inf": "NaN is refused naming the DataFrame column; the check passes numpy",
    "check_n_features_in": "no n_features_in_: fitted columns are named in columns_ (and it fits on numpy)",
    "check_n_features_in_after_fitting": "no n_features_in_: fitted columns are named in columns_",
    "check_transformer_general": "output is a DataFrame of labels, not numbers (and it fits on numpy)",
    "check_transformer_preserve_dtypes": "output is a DataFrame of labels, not the input's float dtype",
}


def not_applicable(estimator: BaseEstimator) -> dict[str, str]:
    """The same checks cannot apply to any of the three: they share the DataFrame-in, labels-out API."""
    return NOT_APPLICABLE


@parametrize_with_checks(
    [RFMSegmenter(), ValueRiskSegmenter(), BehaviourClusters()], expected_failed_checks=not_applicable
)
def test_segmenters_follow_the_scikit_learn_api(
    estimator: BaseEstimator, check: Callable[[BaseEstimator], None]
) -> None:
    check(estimator)


@pytest.mark.parametrize("segmenter", [RFMSegmenter(), ValueRiskSegmenter(), BehaviourClusters()])
def test_a_segmenter_refuses_an_array_and_says_what_it_got(segmenter: BaseEstimator) -> None:
    with pytest.raises(TypeError, match=r"a pandas DataFrame with named columns, got numpy\.ndarray"):
        segmenter.fit(np.ones((20, 3)))
