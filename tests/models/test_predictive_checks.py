"""Predictive checks (``clv.predictive_checks``): on data lifetimes generates from a known population of each
purchase model, the fitted model's calibration-period histogram matches the data's; the holdout check
adds up to the model's expected purchases; a model of the wrong kind shows in the histogram."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes.generate_data import (
    beta_geometric_nbd_model,
    modified_beta_geometric_nbd_model,
    pareto_nbd_model,
)

from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.clv.predictive_checks import (
    BUCKETS,
    bucket_counts,
    holdout_purchase_histogram,
    predictive_checks_plot,
    repeat_purchase_histogram,
)

CUSTOMERS = 6_000
GENERATORS = {  # lifetimes' own simulators, independent of ours, at CDNOW-like parameters
    "bgnbd": lambda T: beta_geometric_nbd_model(T, 0.24, 4.41, 0.79, 2.43, size=len(T)),
    "mbgnbd": lambda T: modified_beta_geometric_nbd_model(T, 0.52, 6.18, 0.89, 1.61, size=len(T)),
    "pareto": lambda T: pareto_nbd_model(T, 0.55, 10.58, 0.61, 11.67, size=len(T)),
}


def simulated(purchase_model: str, seed: int = 0) -> pd.DataFrame:
    """A BTYD summary drawn by lifetimes from ``purchase_model``'s population (T of 27-39 weeks), with a
    spend per repeat buyer."""
    np.random.seed(seed)  # lifetimes' generators use NumPy's global stream
    T = np.random.uniform(27, 39, CUSTOMERS)
    summary = GENERATORS[purchase_model](T)[["frequency", "recency", "T"]].astype(float)
    rng = np.random.default_rng(seed)
    summary["monetary_value"] = np.where(summary["frequency"] > 0, rng.gamma(6.0, 6.0, CUSTOMERS), 0.0)
    return summary


def test_buckets_cap_at_seven() -> None:
    assert list(bucket_counts(np.array([0, 0, 1, 7, 12, 3]))) == [2, 1, 0, 1, 0, 0, 0, 2]


@pytest.mark.parametrize("purchase_model", sorted(GENERATORS))
def test_the_fitted_model_reproduces_the_calibration_histogram(purchase_model: str) -> None:
    summary = simulated(purchase_model)
    model = CLVModel(purchase_model).fit(summary)
    table = repeat_purchase_histogram(model, summary, replicates=20, seed=1)
    assert list(table.index) == list(BUCKETS)
    assert table["actual"].sum() == CUSTOMERS
    assert table["model"].sum() == pytest.approx(CUSTOMERS)
    # each bucket within sampling error of the data (Poisson-like: 4 standard errors, at least 2%)
    tolerance = np.maximum(4 * np.sqrt(table["actual"]), 0.02 * CUSTOMERS)
    assert (np.abs(table["model"] - table["actual"]) < tolerance).all(), table


def test_a_model_that_does_not_fit_the_data_shows() -> None:
    """The BG/NBD fit with its dropout forced high (p around .83 after each purchase): the data's repeat
    buyers of two or more purchases all but vanish from the model's histogram."""
    summary = simulated("bgnbd")
    model = CLVModel("bgnbd").fit(summary)
    model.purchases_.params_["a"], model.purchases_.params_["b"] = 5.0, 1.0
    table = repeat_purchase_histogram(model, summary, seed=1)
    assert table.loc["2":, "model"].sum() < 0.5 * table.loc["2":, "actual"].sum()


def test_the_holdout_check_adds_up_to_the_expected_purchases() -> None:
    summary = simulated("bgnbd", seed=3)
    model = CLVModel("bgnbd").fit(summary)
    observed = np.random.default_rng(4).poisson(model.expected_purchases(summary, 39.0))
    table = holdout_purchase_histogram(model, summary, 39.0, observed, draws=400, seed=2)
    assert table["actual"].sum() == CUSTOMERS
    assert table["model"].sum() == pytest.approx(CUSTOMERS)
    assert list(table["actual"]) == list(bucket_counts(observed))
    # the model's zero bucket is the closed-form P(no purchase in 39 weeks) summed over customers, and
    # its buckets' mean (7+ counted as 7) stays under the expected purchases by little
    quiet = model.probability_no_purchase(summary, 39.0).sum()
    assert table.loc["0", "model"] == pytest.approx(quiet, rel=0.02)
    counted = (table["model"].to_numpy() * np.arange(8)).sum()
    expected = model.expected_purchases(summary, 39.0).sum()
    assert 0.9 * expected < counted <= expected * 1.02


def test_the_plot_has_both_panels() -> None:
    summary = simulated("bgnbd")
    model = CLVModel("bgnbd").fit(summary)
    table = repeat_purchase_histogram(model, summary, replicates=2)
    figure = predictive_checks_plot(table, table, "bgnbd")
    assert len(figure.axes) == 2
    assert figure.axes[0].get_xticklabels()[-1].get_text() == "7+"
