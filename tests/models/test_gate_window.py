"""A retrained candidate is weighed on its own, later holdout window; an earlier or unreadable one is not."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from crm_analytics.models.gate import later_window
from crm_analytics.models.gate_evidence import Judged, weigh


def test_later_window_only_for_a_holdout_starting_after_the_champions() -> None:
    newer, older = "2025-10-31+30d:fe49aa:from-2025-10-01", "2025-10-01+30d:a3b325:oof"
    assert later_window(newer, older)
    assert not later_window(older, newer)
    assert not later_window(newer, newer)
    assert not later_window("not a tag", older)
    assert not later_window(newer, None)


def test_a_refit_of_the_champions_configuration_passes_and_says_so() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(500) < 0.3
    scores = rng.random(500) + labels * 0.3
    same = Judged(labels.astype(float), scores), Judged(labels.astype(float), scores.copy())
    refused = weigh("roc_auc", roc_auc_score, *same, min_gain=0.005)
    assert not refused.passed  # a gain of 0 is no reason to replace a configuration
    assert "less than the minimum" in refused.reason
    refit = weigh("roc_auc", roc_auc_score, *same, min_gain=0.005, refit=True)
    assert refit.passed
    assert refit.difference == 0.0
    assert "refit" in refit.reason
