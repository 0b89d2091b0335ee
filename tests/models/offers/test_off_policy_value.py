"""The offline value of an offer policy: clipped, self-normalised IPS, on a simulated log whose true
values are known, so one forged row cannot decide which policy wins the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models.offers.evaluation import one_hot, policy_values

MARGIN = 10.0
P_ACCEPT = np.array([0.5, 0.2, 0.1])  # true values per booking: 5, 2 and 1 EUR


def simulated_log(n: int = 3_000, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """A uniform logging policy over three offers (propensity 1/3): logged offer, events, reward."""
    rng = np.random.default_rng(seed)
    logged = rng.integers(0, 3, n)
    reward = (rng.random(n) < P_ACCEPT[logged]) * MARGIN
    return logged, pd.DataFrame({"propensity": np.full(n, 1 / 3)}), reward


def values(logged: np.ndarray, events: pd.DataFrame, reward: np.ndarray) -> dict[str, dict[str, float]]:
    n = len(logged)
    return {
        name: policy_values(one_hot(np.full(n, offer), 3), logged, events, reward, None)
        for name, offer in (("champion", 0), ("candidate", 1))
    }


def test_the_value_estimates_the_true_value() -> None:
    estimated = values(*simulated_log())
    for name, truth in (("champion", 5.0), ("candidate", 2.0)):
        value = estimated[name]
        assert abs(value["ips"] - truth) < 3 * value["ips_standard_error"]
        assert value["clipped_weights"] == 0
        assert 900 < value["effective_sample_size"] < 1_100  # about a third of the log is the policy's


def test_one_forged_row_cannot_decide_the_gate() -> None:
    logged, events, reward = simulated_log()
    # one row claiming the candidate's offer was shown with propensity 1e-40 and accepted
    forged_logged = np.append(logged, 1)
    forged_events = pd.concat([events, pd.DataFrame({"propensity": [1e-40]})], ignore_index=True)
    forged_reward = np.append(reward, MARGIN)

    estimated = values(forged_logged, forged_events, forged_reward)

    candidate, champion = estimated["candidate"], estimated["champion"]
    assert candidate["ips"] < champion["ips"]  # the gate (higher ips_value wins) still keeps the champion
    assert candidate["clipped_weights"] == 1
    assert candidate["ips"] == pytest.approx(values(logged, events, reward)["candidate"]["ips"], abs=0.5)
    assert candidate["ips"] <= MARGIN  # self-normalised: never beyond the largest reward


def test_a_policy_the_log_never_shows_has_no_value() -> None:
    logged, events, reward = simulated_log()
    shown = logged != 2
    value = policy_values(
        one_hot(np.full(shown.sum(), 2), 3), logged[shown], events[shown], reward[shown], None
    )
    assert value["ips"] == 0.0
    assert value["effective_sample_size"] == 0.0
