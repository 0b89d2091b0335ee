"""The gate's statistics on scores with a known truth: noise never passes, a real gain does, a guard
stops a gain that costs calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from crm_analytics.models.gate_evidence import Guard, Judged, weigh
from crm_analytics.models.metrics import spearman

CUSTOMERS = 3_000
SAMPLES = 300  # the gate draws 1,000; fewer keep the test quick and the intervals honest enough
BRIER = Guard("brier", brier_score_loss, tolerance=0.002, higher_is_better=False)


def churners(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and each customer's true churn probability."""
    rng = np.random.default_rng(seed)
    probability = rng.beta(2, 3, CUSTOMERS)
    return (rng.random(CUSTOMERS) < probability).astype(int), probability


def noisy(probability: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(probability + rng.normal(0, noise, len(probability)), 0.001, 0.999)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_equally_good_models_never_pass(seed: int) -> None:
    labels, probability = churners(seed)
    champion, candidate = noisy(probability, 0.1, seed), noisy(probability, 0.1, seed + 100)
    evidence = weigh(
        "roc_auc",
        roc_auc_score,
        Judged(labels, candidate),
        Judged(labels, champion),
        0.005,
        (BRIER,),
        samples=SAMPLES,
    )
    assert not evidence.passed
    assert evidence.low < evidence.difference < evidence.high
    assert evidence.customers == CUSTOMERS


def test_a_clearly_better_model_passes_with_its_interval_above_zero() -> None:
    labels, probability = churners(0)
    evidence = weigh(
        "roc_auc",
        roc_auc_score,
        Judged(labels, noisy(probability, 0.02, 1)),
        Judged(labels, noisy(probability, 0.3, 2)),
        0.005,
        (BRIER,),
        samples=SAMPLES,
    )
    assert evidence.passed, evidence.reason
    assert evidence.low > 0.005
    assert evidence.guards["brier"]["ok"]
    assert "no guard worse" in evidence.reason


def test_a_gain_below_the_minimum_or_with_a_worse_guard_is_refused() -> None:
    labels, probability = churners(0)
    better, worse = noisy(probability, 0.02, 1), noisy(probability, 0.3, 2)
    small = weigh(
        "roc_auc", roc_auc_score, Judged(labels, better), Judged(labels, worse), 0.5, samples=SAMPLES
    )
    assert not small.passed
    assert "less than the minimum +0.5000" in small.reason
    overconfident = np.where(better > 0.5, 0.999, 0.001)  # ranks as well, calibrated far worse
    guarded = weigh(
        "roc_auc",
        roc_auc_score,
        Judged(labels, overconfident),
        Judged(labels, worse),
        0.0,
        (BRIER,),
        samples=SAMPLES,
    )
    assert not guarded.passed
    assert guarded.reason.startswith("brier worse by")


def test_versions_judged_on_other_customers_are_refused() -> None:
    labels, probability = churners(0)
    with pytest.raises(ValueError, match="same customers"):
        weigh("roc_auc", roc_auc_score, Judged(labels, probability), Judged(1 - labels, probability), 0.0)


def test_a_statistic_undefined_on_the_window_is_refused_with_that_reason() -> None:
    labels, probability = churners(0)
    spend = labels * 100.0
    constant = np.full(CUSTOMERS, 0.5)  # no rank correlation with anything
    evidence = weigh(
        "spearman", spearman, Judged(spend, constant), Judged(spend, probability), 0.0, samples=50
    )
    assert not evidence.passed
    assert "not defined" in evidence.reason
