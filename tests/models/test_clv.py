"""CLV model: the published CDNOW parameters through our pipeline, compressed fits, vectorised CLV."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import ConvergenceError as LifetimesConvergenceError
from sklearn.exceptions import NotFittedError

from crm_analytics.models.clv import likelihoods
from crm_analytics.models.clv import model as clv_module
from crm_analytics.models.clv.expectations import distinct_rows
from crm_analytics.models.clv.model import CLVModel, ConvergenceError, compress

# Fader, Hardie & Lee (2005), CDNOW_sample, calibration to 1997-09-30, weeks; published to 3-4 digits.
PUBLISHED = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "pareto": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
}
GAMMA_GAMMA = {"spend_p": 6.25, "spend_q": 3.74, "spend_v": 15.44}


def published_tolerance(value: float) -> float:
    """Half a unit in the published value's last digit, plus 0.05% for where an optimiser stops."""
    decimals = len(f"{value}".split(".")[1])
    return 0.5 * 10**-decimals + 5e-4 * abs(value)


@pytest.mark.parametrize("purchase_model", ["bgnbd", "pareto"])
def test_reproduces_the_published_cdnow_parameters(cdnow_weeks: pd.DataFrame, purchase_model: str) -> None:
    model = CLVModel(purchase_model).fit(cdnow_weeks)
    for name, value in (PUBLISHED[purchase_model] | GAMMA_GAMMA).items():
        assert abs(model.params_[name] - value) <= published_tolerance(value), (name, model.params_[name])
    assert (cdnow_weeks["frequency"] > 0).sum() == 946  # the Gamma-Gamma fit's repeat customers
    assert model.retried_ == []
    published_ll = {"bgnbd": -9582.4, "pareto": -9594.97}[purchase_model]  # Fader, Hardie & Lee; Hardie
    assert model.log_likelihood() == pytest.approx(published_ll, abs=0.05)


@pytest.mark.parametrize(
    ("purchase_model", "fitter", "tol", "rtol"),
    [("bgnbd", BetaGeoFitter, 1e-8, 1e-7), ("pareto", ParetoNBDFitter, 1e-11, 1e-4)],
)
def test_compressed_fit_equals_the_plain_fit(
    cdnow_weeks: pd.DataFrame, purchase_model: str, fitter: type, tol: float, rtol: float
) -> None:
    """Same likelihood, same optimum. BG/NBD (closed-form gradient against autograd) agrees to 3e-7 at
    lifetimes' default tol 1e-7 and to 4e-8 at tol 1e-8 (lifetimes' own fit no longer converges at 1e-9).
    Pareto/NBD's likelihood is so flat near its
    optimum that fits differing only in row order stop ~3e-5 (relative) apart, even at tol 1e-11."""
    plain = fitter().fit(cdnow_weeks["frequency"], cdnow_weeks["recency"], cdnow_weeks["T"], tol=tol)
    model = CLVModel(purchase_model, tol=tol).fit(cdnow_weeks)
    assert model.n_patterns_ < len(cdnow_weeks) / 2
    np.testing.assert_allclose(list(model.purchases_.params_), list(plain.params_), rtol=rtol)


@pytest.mark.parametrize("purchase_model", ["bgnbd", "pareto", "mbgnbd"])
def test_clv_equals_lifetimes(cdnow_weeks: pd.DataFrame, purchase_model: str) -> None:
    model = CLVModel(purchase_model).fit(cdnow_weeks)
    s = cdnow_weeks
    expected = model.spend_.customer_lifetime_value(
        model.purchases_,
        s["frequency"],
        s["recency"],
        s["T"],
        s["monetary_value"],
        time=12,
        discount_rate=0.01,
        freq="W",
    )
    np.testing.assert_allclose(
        model.clv(s, months=12, discount_rate=0.01), expected.to_numpy(), rtol=1e-9, atol=0
    )


@pytest.mark.parametrize("purchase_model", ["bgnbd", "mbgnbd"])
def test_split_expectation_equals_lifetimes_on_long_daily_histories(
    cdnow_weeks: pd.DataFrame, purchase_model: str
) -> None:
    """Days instead of weeks: T up to 3 years and up to 300 repeats, where the hypergeometric term of
    BG/NBD overflows and lifetimes switches to Euler's transformation."""
    days = cdnow_weeks.assign(recency=cdnow_weeks["recency"] * 7, T=cdnow_weeks["T"] * 7)
    model = CLVModel(purchase_model, time_unit="days").fit(days)
    rng = np.random.default_rng(0)
    T = rng.uniform(1, 1100, 5_000).round()
    grid = pd.DataFrame(
        {
            "frequency": rng.integers(0, 300, 5_000).astype(float),
            "recency": (T * rng.uniform(0, 1, 5_000)).round(),
            "T": T,
        }
    )
    grid.loc[grid["frequency"] == 0, "recency"] = 0.0
    expected = model.purchases_.conditional_expected_number_of_purchases_up_to_time(
        365.0, grid["frequency"], grid["recency"], grid["T"]
    )
    np.testing.assert_allclose(model.expected_purchases(grid, 365), expected, rtol=1e-12)


@pytest.mark.parametrize("purchase_model", ["bgnbd", "mbgnbd"])
def test_predictions_follow_lifetimes(cdnow_weeks: pd.DataFrame, purchase_model: str) -> None:
    model = CLVModel(purchase_model).fit(cdnow_weeks)
    s = cdnow_weeks
    fitter = model.purchases_
    np.testing.assert_allclose(
        model.expected_purchases(s, 39),
        fitter.conditional_expected_number_of_purchases_up_to_time(39, s["frequency"], s["recency"], s["T"]),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        model.probability_alive(s), fitter.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
    )


def test_non_positive_spend_is_excluded_and_counted(cdnow_weeks: pd.DataFrame) -> None:
    summary = cdnow_weeks.copy()
    repeaters = summary.index[summary["frequency"] > 0][:5]
    summary.loc[repeaters, "monetary_value"] = 0.0
    model = CLVModel().fit(summary)
    assert model.spend_excluded_.count == 5
    assert model.spend_excluded_.share == pytest.approx(5 / 946)


def test_non_convergence_retries_with_a_penalizer_then_fails_with_advice(
    cdnow_weeks: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[float] = []
    real = likelihoods.fit_bgnbd

    def flaky_fit(*args: Any) -> BetaGeoFitter:
        penalty = args[4]
        calls.append(penalty)
        if penalty == 0:
            print("optimiser state")  # lifetimes prints before raising: stdout must stay clean for --json
            raise LifetimesConvergenceError("did not converge")
        return real(*args)

    monkeypatch.setattr(likelihoods, "fit_bgnbd", flaky_fit)
    model = CLVModel(retry_penalizer=0.01).fit(cdnow_weeks)
    assert calls == [0.0, 0.01]
    assert model.retried_ == ["purchases: penalizer 0.01"]
    assert capsys.readouterr().out == ""

    def never(*args: Any) -> BetaGeoFitter:
        raise LifetimesConvergenceError("did not converge")

    monkeypatch.setattr(likelihoods, "fit_bgnbd", never)
    with pytest.raises(
        ConvergenceError, match=r"did not converge, even with penalizer 0\.01\. Try: a larger penalizer"
    ):
        CLVModel(retry_penalizer=0.01).fit(cdnow_weeks)


def test_missing_column_is_named(cdnow_weeks: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="missing column 'monetary_value'"):
        CLVModel().fit(cdnow_weeks.drop(columns="monetary_value"))


def test_unfitted_model_says_so(cdnow_weeks: pd.DataFrame) -> None:
    model = CLVModel()
    assert repr(model) == "CLVModel(purchase_model='bgnbd', time_unit='weeks', not fitted)"
    with pytest.raises(NotFittedError, match="this CLVModel is not fitted yet; call fit first"):
        model.clv(cdnow_weeks)


def test_compress_counts_every_customer_once(cdnow_weeks: pd.DataFrame) -> None:
    patterns = compress(cdnow_weeks)
    assert patterns["customers"].sum() == len(cdnow_weeks)
    assert not patterns.duplicated(["frequency", "recency", "T"]).any()
    assert clv_module.PATTERN == ["frequency", "recency", "T"]


def test_distinct_rows_keep_first_appearance_order() -> None:
    codes, (x, t) = distinct_rows([np.array([2.0, 0.0, 2.0, 1.0, 0.0]), np.array([5.0, 3.0, 5.0, 5.0, 4.0])])
    assert codes.tolist() == [0, 1, 0, 2, 3]
    assert x.tolist() == [2.0, 0.0, 1.0, 0.0]
    assert t.tolist() == [5.0, 3.0, 5.0, 4.0]


@pytest.mark.parametrize("purchase_model", ["bgnbd", "mbgnbd", "pareto"])
def test_standard_errors_from_the_hessian(cdnow_weeks: pd.DataFrame, purchase_model: str) -> None:
    """lifetimes' own standard errors where it has them (BG/NBD, MBG/NBD); Pareto/NBD's, which lifetimes
    cannot give, from the same numerical Hessian."""
    model = CLVModel(purchase_model).fit(cdnow_weeks)
    table = model.summary
    assert list(table.index[:4]) == list(model.purchases_.params_.index)
    se = table["se(coef)"].to_numpy()
    assert np.isfinite(se).all()
    assert (se > 0).all()
    if purchase_model != "pareto":
        np.testing.assert_allclose(
            table["se(coef)"].iloc[:4], model.purchases_.summary["se(coef)"], rtol=1e-4
        )
