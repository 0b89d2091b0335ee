"""BG/BB trained through MLflow like the other families: on a warehouse of purchases made at yearly
occasions, simulated from the model with the donations data's published parameters, `crm train bgbb`
recovers them, beats the past-rate baseline on the two later occasions, logs and registers a pyfunc
that `crm promote` gates on the holdout RMSE."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import ibis
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from crm_analytics.features.occasions import occasion_purchasers, occasion_summary, whole_occasions
from crm_analytics.models.clv.bgbb import PUBLISHED
from tests.test_cli import crm

FIRST_YEAR, LAST_YEAR = 2012, 2023  # one occasion (an annual gala on 1 June) a year
AS_OF = date(2021, 6, 1)  # calibration to the 2021 gala; holdout: 2022 and 2023, to the data's last day
CUSTOMERS = 4_000


def simulated_galas(customers: int, seed: int) -> pd.DataFrame:
    """Rows of the transactions contract: each guest's first gala in 2012-2016, then at each later one
    dead with probability theta (for good) or else attending with probability p (Fader, Hardie & Shang
    2010), with p ~ Beta(alpha, beta) and theta ~ Beta(gamma, delta) at the published values."""
    rng = np.random.default_rng(seed)
    p = rng.beta(PUBLISHED["alpha"], PUBLISHED["beta"], customers)
    theta = rng.beta(PUBLISHED["gamma"], PUBLISHED["delta"], customers)
    rows = []
    for guest in range(customers):
        first = int(rng.integers(FIRST_YEAR, FIRST_YEAR + 5))
        years = [first]
        for year in range(first + 1, LAST_YEAR + 1):
            if rng.random() < theta[guest]:
                break
            if rng.random() < p[guest]:
                years.append(year)
        rows += [(f"g{guest}", year) for year in years]
    frame = pd.DataFrame(rows, columns=["customer_id", "year"])
    return pd.DataFrame(
        {
            "transaction_id": frame["customer_id"] + "-" + frame["year"].astype(str),
            "customer_id": frame["customer_id"],
            "source": "gala",
            "timestamp": pd.to_datetime(frame["year"].astype(str) + "-06-01 20:00"),
            "amount": 150.0,
            "currency": "EUR",
            "type": "purchase",
            "channel": "web",
        }
    )


def test_occasions_count_each_year_once_from_the_cutoff() -> None:
    transactions = simulated_galas(300, seed=1)
    table = ibis.memtable(transactions.assign(reference_id=None))
    summary = occasion_summary(table, AS_OF, 12, holdout_occasions=2).execute().set_index("customer_id")
    assert summary.index.is_unique
    assert len(summary) == 300
    years = transactions.assign(year=transactions["timestamp"].dt.year).groupby("customer_id")["year"]
    first, calibration = years.min(), transactions[transactions["timestamp"].dt.year <= 2021]
    expected_n = 2021 - first
    pd.testing.assert_series_equal(summary["n_periods"], expected_n, check_names=False, check_dtype=False)
    repeat = calibration.groupby("customer_id").size() - 1
    pd.testing.assert_series_equal(summary["frequency"], repeat, check_names=False, check_dtype=False)
    last = calibration.groupby("customer_id")["timestamp"].max().dt.year
    pd.testing.assert_series_equal(summary["recency"], last - first, check_names=False, check_dtype=False)
    later = transactions[transactions["timestamp"].dt.year > 2021].groupby("customer_id").size()
    holdout = later.reindex(summary.index, fill_value=0)
    pd.testing.assert_series_equal(
        summary["holdout_purchases"], holdout, check_names=False, check_dtype=False
    )
    purchasers = occasion_purchasers(table, AS_OF, 12, 2).execute()
    assert purchasers["occasion"].tolist() == [1, 2]
    assert purchasers["customers"].sum() == holdout.sum()  # every guest had joined by 2016


def test_an_annual_occasion_keeps_its_date_across_a_leap_year_and_late_cancellations_count() -> None:
    """A gala every 1 June from 2021 to 2025 (2024 a leap year); the 2021 ticket is cancelled in 2023,
    after the cutoff: at the cutoff it was a purchase, as every feature sees it."""
    rows: list[tuple[str, str, str, str, str | None]] = [
        (f"t{year}", "g1", f"{year}-06-01", "purchase", None) for year in range(2021, 2026)
    ]
    rows.append(("c2021", "g1", "2023-03-01", "cancellation", "t2021"))
    rows += [("u2022", "g2", "2022-06-01", "purchase", None)]
    frame = pd.DataFrame(rows, columns=["transaction_id", "customer_id", "timestamp", "type", "reference_id"])
    table = ibis.memtable(frame.assign(timestamp=pd.to_datetime(frame["timestamp"]), amount=10.0))
    cutoff = date(2022, 6, 1)
    assert whole_occasions(cutoff, date(2025, 6, 1), 12) == 3
    assert whole_occasions(cutoff, date(2025, 5, 31), 12) == 2
    summary = occasion_summary(table, cutoff, 12, 3).execute().set_index("customer_id")
    assert summary.loc["g1"].tolist() == [1, 1, 1, 3]  # 2021 and 2022 known, 2023-2025 each one occasion
    assert summary.loc["g2"].tolist() == [0, 0, 0, 0]  # first bought at the cutoff's own occasion
    assert occasion_purchasers(table, cutoff, 12, 3).execute()["customers"].tolist() == [1, 1, 1]


@pytest.fixture
def galas(isolated: Path) -> Path:
    folder = isolated / "galas"
    folder.mkdir()
    simulated_galas(CUSTOMERS, seed=7).to_csv(folder / "transactions.csv", index=False)
    code, _, stderr = crm("ingest", str(folder), "--json")
    assert code == 0, stderr
    return folder


def test_train_bgbb_recovers_the_parameters_is_logged_and_gated(galas: Path) -> None:
    code, trained, stderr = crm("train", "bgbb", "--as-of", str(AS_OF), "--json")
    assert code == 0, stderr
    assert (trained["model"], trained["version"]) == ("crm-bgbb", "1")
    assert trained["holdout"].startswith("2021-06-01+730d:")
    metrics = trained["metrics"]
    for name, value in PUBLISHED.items():  # within three standard errors of the truth
        client = MlflowClient(tracking_uri=f"sqlite:///{Path('mlruns/mlflow.db').resolve()}")
        estimate = float(client.get_run(trained["run_id"]).data.params[f"param_{name}"])
        assert abs(estimate - value) < 3 * metrics[f"param_{name}_se"], name
    # the model beats carrying each guest's past rate forward, and gets the total nearly right
    assert metrics["holdout_purchases_rmse"] < metrics["past_rate_holdout_purchases_rmse"]
    report = json.loads(Path(client.download_artifacts(trained["run_id"], "evaluation.json")).read_text())
    actual = report["holdout_purchases_actual"]
    assert metrics["holdout_purchases_total"] == pytest.approx(actual, rel=0.08)
    assert [row["occasion"] for row in report["tracking"]] == [1, 2]
    assert sum(row["actual"] for row in report["tracking"]) == actual
    plots = {Path(a.path).name for a in client.list_artifacts(trained["run_id"], "plots")}
    assert plots == {"conditional_expectations.png", "occasion_tracking.png"}

    mlflow.set_tracking_uri(client.tracking_uri)
    served = mlflow.pyfunc.load_model("models:/crm-bgbb/1")
    patterns = pd.DataFrame({"frequency": [0, 3, 3], "recency": [0, 3, 9], "n_periods": [9, 9, 9]})
    answer = served.predict(patterns)
    assert list(answer.columns) == ["p_alive", "expected_purchases"]
    p_alive, expected = answer["p_alive"].to_numpy(), answer["expected_purchases"].to_numpy()
    assert p_alive[1] < p_alive[2]
    assert expected[1] < expected[2]
    assert expected[0] < expected[2]  # never back in nine years: a low p, or gone

    code, promoted, stderr = crm("promote", "bgbb", "--json")
    assert code == 0, stderr
    assert (promoted["version"], promoted["reason"]) == ("1", "first champion")
    code, again, _ = crm("train", "bgbb", "--as-of", str(AS_OF), "--json")
    assert code == 0
    assert again["metrics"] == metrics
    code, _, stderr = crm("promote", "bgbb")
    assert code == 1
    assert "holdout_purchases_rmse" in stderr  # no better on the same holdout: the champion stays


def test_train_bgbb_needs_a_whole_occasion_after_the_cutoff(galas: Path) -> None:
    code, _, stderr = crm("train", "bgbb", "--as-of", "2023-06-30")
    assert code == 1
    assert "until:" in stderr
    assert "CRM_BGBB_OCCASION_MONTHS" in stderr
    assert "Traceback" not in stderr
