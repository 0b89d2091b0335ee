"""The bootstrap's ROC AUC over many resamples at once (``models.metrics.resampled_roc_auc``): equal to
scikit-learn's on each resampled set of rows, ties included, and the same interval as resampling row by
row (the same draws, one-class resamples drawn again alike)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from crm_analytics.models.metrics import bootstrap_difference, resample_counts, resampled_roc_auc


@pytest.mark.parametrize("rows", [12, 400, 3_000])
def test_each_resample_s_auc_is_scikit_learn_s_on_its_rows(rows: int) -> None:
    rng = np.random.default_rng(rows)
    labels = rng.random(rows) < 0.3
    labels[:2] = [True, False]
    tied = np.round(rng.random(rows) + 0.3 * labels, 1)  # few distinct scores: many ties
    counts = resample_counts(np.random.default_rng(0), rows, 25)
    assert (counts.sum(axis=1) == rows).all()
    for scores in (tied, rng.random(rows)):
        fast = resampled_roc_auc(counts, labels, scores)
        for resample, auc in zip(counts, fast, strict=True):
            drawn = np.repeat(np.arange(rows), resample)
            if labels[drawn].all() or not labels[drawn].any():
                assert np.isnan(auc)  # one class only: the bootstrap draws such a resample again
            else:
                assert auc == pytest.approx(roc_auc_score(labels[drawn], scores[drawn]), abs=1e-12)


@pytest.mark.parametrize("rows", [10, 2_000])
def test_the_interval_is_the_one_resampling_row_by_row_gives(rows: int) -> None:
    rng = np.random.default_rng(3)
    labels = rng.random(rows) < 0.25
    labels[:2] = [True, False]  # at 10 rows many resamples hold one class and are drawn again
    ours, other = rng.random(rows) + 0.4 * labels, rng.random(rows) + 0.3 * labels
    fast = bootstrap_difference(labels, ours, other, samples=1_000, seed=1)

    def auc(y: np.ndarray, s: np.ndarray) -> float:  # not roc_auc_score itself: row by row
        return float(roc_auc_score(y, s))

    slow = bootstrap_difference(labels, ours, other, auc, samples=1_000, seed=1)
    assert fast == pytest.approx(slow, abs=1e-12)
    assert fast["low"] < fast["difference"] < fast["high"]
