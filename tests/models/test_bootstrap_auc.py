"""The bootstrap's ROC AUC over many resamples at once (``models.metrics.resampled_roc_auc``): equal to
scikit-learn's on each resampled set of rows, ties included, and the same interval as resampling row by
row (the same draws, one-class resamples drawn again alike)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from crm_analytics.models import metrics
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


def row_by_row(labels: np.ndarray, ours: np.ndarray, other: np.ndarray, samples: int) -> np.ndarray:
    """The differences as the bootstrap drew them before: one resample at a time, seed 1."""
    rng, out = np.random.default_rng(1), list[float]()
    while len(out) < samples:
        rows = rng.integers(0, len(labels), len(labels))
        if labels[rows].min() == labels[rows].max():
            continue  # one class: drawn again
        out.append(roc_auc_score(labels[rows], ours[rows]) - roc_auc_score(labels[rows], other[rows]))
    return np.array(out)


@pytest.mark.parametrize("rows", [10, 300])
def test_every_resample_is_the_one_drawn_row_by_row(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same resamples in the same order, one-class ones drawn again alike, over many chunks."""
    monkeypatch.setattr(metrics, "RESAMPLE_CELLS", 7 * rows)  # chunks of 7 resamples
    rng = np.random.default_rng(3)
    labels = rng.random(rows) < 0.25
    labels[:2] = [True, False]
    if rows == 10:  # one churner in ten: about a third of the resamples hold none and are drawn again
        labels[2:] = False
    ours, other = rng.random(rows) + 0.4 * labels, np.round(rng.random(rows) + 0.3 * labels, 1)
    fast = metrics.roc_auc_differences(labels, ours, other, 200, np.random.default_rng(1))
    np.testing.assert_allclose(fast, row_by_row(labels, ours, other, 200), rtol=0, atol=1e-12)


def test_the_interval_is_scikit_learn_s_whatever_the_labels_are_written_as() -> None:
    rng = np.random.default_rng(4)
    churned = rng.random(500) < 0.3
    ours, other = rng.random(500) + 0.4 * churned, rng.random(500) + 0.3 * churned
    expected = bootstrap_difference(churned, ours, other, samples=300, seed=2)

    def auc(y: np.ndarray, s: np.ndarray) -> float:  # not roc_auc_score itself: row by row
        return float(roc_auc_score(y, s))

    assert bootstrap_difference(churned, ours, other, auc, samples=300, seed=2) == pytest.approx(expected)
    for written in (churned.astype(int), churned + 1, np.where(churned, 1, -1)):  # the larger is positive
        assert bootstrap_difference(written, ours, other, samples=300, seed=2) == pytest.approx(expected)
    assert expected["low"] < expected["difference"] < expected["high"]
    with pytest.raises(ValueError, match="finite scores"):
        bootstrap_difference(churned, np.where(churned, np.nan, ours), other)
