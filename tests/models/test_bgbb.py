"""BG/BB on the donations data shipped in the lifetimes wheel reproduces Fader, Hardie & Shang (2010):
the parameters and log-likelihood they publish, conditional expectations equal to the closed form for
customers known to be alive, and the fitted distribution of repeat donations close to the data's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

from crm_analytics.models.clv.bgbb import BGBBModel, donations_summary
from tests.test_cli import crm

PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}  # Fader, Hardie & Shang 2010
PUBLISHED_LL = -33_225.6


@pytest.fixture(scope="module")
def fitted() -> BGBBModel:
    return BGBBModel().fit(donations_summary())


def test_donations_reproduce_the_published_parameters_and_log_likelihood(fitted: BGBBModel) -> None:
    assert fitted.n_customers_ == 11_104
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, abs=1e-3), name
    assert fitted.log_likelihood() == pytest.approx(PUBLISHED_LL, abs=0.1)
    assert (fitted.summary["se(coef)"] > 0).all()


def test_one_row_per_customer_fits_as_the_weighted_patterns(fitted: BGBBModel) -> None:
    patterns = donations_summary()
    customers = patterns.loc[patterns.index.repeat(patterns["customers"])].drop(columns="customers")
    per_customer = BGBBModel().fit(customers.reset_index(drop=True))
    for name in PUBLISHED:
        assert per_customer.params_[name] == pytest.approx(fitted.params_[name], rel=1e-6)


def test_a_donor_of_the_last_appeal_is_alive_and_expects_the_closed_form(fitted: BGBBModel) -> None:
    """Alive at n for sure (gave at the last occasion): E[X(n, n + k)] = E[p] sum_i E[(1 - theta)^i],
    with p ~ Beta(alpha + x, beta + n - x) and theta ~ Beta(gamma, delta + n)."""
    a, b, g, d = (fitted.params_[k] for k in ("alpha", "beta", "gamma", "delta"))
    n, ahead = 6, 5
    donors = pd.DataFrame({"frequency": [1, 3, 6], "recency": [n, n, n], "n_periods": [n, n, n]})
    survive = sum(np.exp(betaln(g, d + n + i) - betaln(g, d + n)) for i in range(1, ahead + 1))
    closed_form = (a + donors["frequency"]) / (a + b + n) * survive
    assert np.allclose(fitted.probability_alive(donors), 1.0)
    assert np.allclose(fitted.expected_purchases(donors, ahead), closed_form, rtol=1e-9)


def test_lapsed_donors_are_less_likely_alive_and_expect_less(fitted: BGBBModel) -> None:
    lapsed = pd.DataFrame({"frequency": [0, 2, 2, 2], "recency": [0, 2, 4, 6], "n_periods": [6, 6, 6, 6]})
    alive = fitted.probability_alive(lapsed)
    expected = fitted.expected_purchases(lapsed, 5)
    assert alive[0] < 0.2  # never gave again in six appeals
    assert np.all(np.diff(alive[1:]) > 0)  # the later the last gift, the likelier alive
    assert np.all(np.diff(expected[1:]) > 0)


def test_the_fitted_repeat_distribution_tracks_the_data(fitted: BGBBModel) -> None:
    data = donations_summary()
    actual = data.groupby("frequency")["customers"].sum() / data["customers"].sum()
    model = fitted.expected_repeat_distribution(6)
    assert model.sum() == pytest.approx(1.0, abs=1e-9)
    assert (model - actual).abs().max() < 0.01  # within a point for every count 0..6


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ({"frequency": [1], "recency": [1]}, "missing column"),
        ({"frequency": [2], "recency": [1], "n_periods": [6]}, "frequency <= recency"),
        ({"frequency": [0], "recency": [2], "n_periods": [6]}, "recency is 0 exactly"),
        ({"frequency": [1.5], "recency": [2], "n_periods": [6]}, "whole numbers"),
    ],
)
def test_bad_summaries_are_refused_with_the_problem(rows: dict[str, list[float]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        BGBBModel().fit(pd.DataFrame(rows))


def test_crm_evaluate_clv_on_donations_reports_bgbb_beside_the_published_fit() -> None:
    code, report, _ = crm("evaluate", "clv", "--dataset", "donations", "--json")
    assert code == 0
    assert (report["model"], report["customers"], report["occasions"]) == ("bgbb", 11_104, 6)
    for name, value in PUBLISHED.items():
        assert report["parameters"][name]["estimate"] == pytest.approx(value, abs=1e-3)
        assert report["parameters"][name]["published"] == value
    assert report["log_likelihood"] == pytest.approx(PUBLISHED_LL, abs=0.1)
    assert sum(p["customers"] for p in report["patterns"]) == 11_104
    assert all(0 <= p["p_alive"] <= 1 for p in report["patterns"])
    code, _, _ = crm("evaluate", "clv", "--dataset", "donations")  # the table for people
    assert code == 0


def test_crm_evaluate_refuses_what_donations_cannot_answer() -> None:
    code, _, stderr = crm("evaluate", "churn", "--dataset", "donations")
    assert code == 2
    assert "donations is a CLV dataset" in stderr
    code, _, stderr = crm("evaluate", "clv", "--dataset", "donations", "--holdout-end", "2002-12-31")
    assert code == 2
    assert "donations has its own six occasions" in stderr
