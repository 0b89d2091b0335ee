"""BG/BB: the discrete-time "buy 'til you die" model, for businesses whose customers can buy only at
fixed occasions (an annual event, a membership renewal, a yearly appeal).

Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time Noncontractual Setting",
Marketing Science 29(6). At each of ``n_periods`` occasions an alive customer buys with probability
p ~ Beta(alpha, beta), and after each occasion dies with probability theta ~ Beta(gamma, delta). A
customer's summary is (frequency x: occasions with a purchase after the first, recency t_x: the last
such occasion, n_periods: occasions since the first). ``lifetimes`` fits it; this class fits on each
distinct (x, t_x, n) pattern once, weighted by its customers (the same likelihood), and exposes it
with the names ``CLVModel`` uses. The paper's data, the ``donations`` file shipped in the lifetimes
wheel, is ``donations_summary``.
"""

from __future__ import annotations

import contextlib
import io
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from lifetimes import BetaGeoBetaBinomFitter
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from crm_analytics.models.inputs import NOT_FITTED

DISCRETE_COLUMNS = ("frequency", "recency", "n_periods")
PARAMETERS = ("alpha", "beta", "gamma", "delta")
PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}  # the paper's Table 2
PUBLISHED_LOG_LIKELIHOOD = -33_225.6


def donations_summary() -> pd.DataFrame:
    """The donations data of Fader, Hardie & Shang (2010), from the lifetimes wheel: 11,104 donors of
    1995 and their repeat donations in the six annual appeals 1996-2001, one row per distinct
    (frequency, recency) with its number of donors (``customers``)."""
    path = resources.files("lifetimes.datasets").joinpath("donations.csv")
    raw = pd.read_csv(io.StringIO(path.read_text()))
    return pd.DataFrame(
        {
            "frequency": raw["frequency"].astype(int),
            "recency": raw["recency"].astype(int),
            "n_periods": raw["periods"].astype(int),
            "customers": raw["weights"].astype(int),
        }
    )


def check_discrete_summary(summary: pd.DataFrame) -> None:
    """A ValueError naming the problem when ``summary`` is not a discrete-time summary."""
    missing = [c for c in DISCRETE_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"summary: missing column(s) {', '.join(missing)}")
    x, t_x, n = (summary[c].to_numpy() for c in DISCRETE_COLUMNS)
    if not all(np.issubdtype(v.dtype, np.integer) for v in (x, t_x, n)):
        raise ValueError("summary: frequency, recency and n_periods must be whole numbers")
    if (n < 1).any() or (x < 0).any() or (x > t_x).any() or (t_x > n).any():
        raise ValueError("summary: needs 0 <= frequency <= recency <= n_periods and n_periods >= 1")
    if ((x == 0) != (t_x == 0)).any():
        raise ValueError("summary: recency is 0 exactly when frequency is 0")


class BGBBModel(BaseEstimator):
    """The BG/BB purchase model (scikit-learn style; results end in ``_``).

    ``fit`` takes one row per customer, or per distinct pattern with its number of customers in a
    ``customers`` column (as ``donations_summary`` gives it).
    """

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-7) -> None:
        self.penalizer = penalizer
        self.tol = tol

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "fitter_")

    def fit(self, summary: pd.DataFrame) -> BGBBModel:
        check_discrete_summary(summary)
        patterns = _patterns(summary)
        fitter = BetaGeoBetaBinomFitter(penalizer_coef=self.penalizer)
        with contextlib.redirect_stdout(io.StringIO()):  # lifetimes prints its optimiser's progress
            fitter.fit(
                *(patterns[c].to_numpy() for c in DISCRETE_COLUMNS),
                weights=patterns["customers"].to_numpy(),
                tol=self.tol,
            )
        self.fitter_ = fitter
        self.n_customers_ = int(patterns["customers"].sum())
        self.n_patterns_ = len(patterns)
        return self

    @property
    def params_(self) -> dict[str, float]:
        check_is_fitted(self, msg=NOT_FITTED)
        return {name: float(self.fitter_.params_[name]) for name in PARAMETERS}

    @property
    def summary(self) -> pd.DataFrame:
        """Parameters with standard errors and 95% intervals, as lifetimes reports them."""
        check_is_fitted(self, msg=NOT_FITTED)
        return self.fitter_.summary

    def log_likelihood(self) -> float:
        """The log-likelihood at the fitted parameters, summed over the fitted customers."""
        check_is_fitted(self, msg=NOT_FITTED)
        # lifetimes keeps the mean over customers (weights) of the negative log-likelihood
        return -float(self.fitter_._negative_log_likelihood_) * self.n_customers_

    def probability_alive(self, summary: pd.DataFrame, periods_ahead: int = 0) -> np.ndarray:
        """P(alive) at ``periods_ahead`` occasions after the last observed one, per row."""
        return self._per_row("conditional_probability_alive", periods_ahead, summary)

    def expected_purchases(self, summary: pd.DataFrame, periods: int) -> np.ndarray:
        """Expected purchases at the next ``periods`` occasions, per row (the paper's eq. 13)."""
        return self._per_row("conditional_expected_number_of_purchases_up_to_time", periods, summary)

    def _per_row(self, method: str, periods: int, summary: pd.DataFrame) -> np.ndarray:
        """lifetimes' conditional ``method`` for each row's (frequency, recency, n_periods)."""
        check_is_fitted(self, msg=NOT_FITTED)
        check_discrete_summary(summary)
        columns = (summary[c].to_numpy() for c in DISCRETE_COLUMNS)
        return np.asarray(getattr(self.fitter_, method)(periods, *columns), dtype=float)

    def expected_repeat_distribution(self, n_periods: int) -> pd.Series:
        """For a customer observed for ``n_periods`` occasions: P(x repeat purchases), x = 0..n."""
        check_is_fitted(self, msg=NOT_FITTED)
        table = self.fitter_.expected_number_of_transactions_in_first_n_periods(n_periods)
        return table["model"].astype(float) / self.n_customers_


def _patterns(summary: pd.DataFrame) -> pd.DataFrame:
    """Distinct (frequency, recency, n_periods) with their number of customers."""
    counts = summary["customers"] if "customers" in summary.columns else pd.Series(1, index=summary.index)
    frame = summary[list(DISCRETE_COLUMNS)].assign(customers=counts.to_numpy())
    return frame.groupby(list(DISCRETE_COLUMNS), as_index=False)["customers"].sum()


def donations_report(occasions_ahead: int = 5) -> dict[str, Any]:
    """BG/BB fitted on the donations data, beside the published fit (``crm evaluate clv --dataset
    donations``): parameters with standard errors, the log-likelihood, the distribution of repeat
    donations (data vs model) and, per (frequency, recency) pattern, P(alive) and the expected
    donations at the next ``occasions_ahead`` appeals. The file holds the calibration period only, so
    there is no holdout to report."""
    data = donations_summary()
    model = BGBBModel().fit(data)
    summary = model.summary
    actual = data.groupby("frequency")["customers"].sum() / data["customers"].sum()
    fitted = model.expected_repeat_distribution(int(data["n_periods"].max()))
    patterns = data.assign(
        p_alive=model.probability_alive(data),
        expected_donations=model.expected_purchases(data, occasions_ahead),
    )
    return {
        "dataset": "donations",
        "model": "bgbb",
        "customers": model.n_customers_,
        "occasions": int(data["n_periods"].max()),
        "parameters": {
            name: {
                "estimate": float(summary.loc[name, "coef"]),
                "se": float(summary.loc[name, "se(coef)"]),
                "published": PUBLISHED[name],
            }
            for name in PARAMETERS
        },
        "log_likelihood": model.log_likelihood(),
        "published_log_likelihood": PUBLISHED_LOG_LIKELIHOOD,
        "repeat_distribution": [
            {"donations": int(x), "actual": float(actual[x]), "model": float(fitted[x])} for x in actual.index
        ],
        "occasions_ahead": occasions_ahead,
        "patterns": [
            {
                k: (int(v) if k in (*DISCRETE_COLUMNS, "customers") else round(float(v), 6))
                for k, v in row.items()
            }
            for row in patterns.to_dict(orient="records")
        ],
    }
