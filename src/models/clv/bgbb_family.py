"""The BG/BB family (``crm-bgbb``): discrete-time purchase model for businesses whose customers can buy
only at fixed occasions (``CRM_BGBB_OCCASION_MONTHS`` apart: an annual event, a yearly renewal).

``crm train bgbb --as-of DAY [--until DAY]`` cuts the warehouse's purchases into occasions ending on the
cutoff (``features.occasions``), fits BG/BB on the occasions up to it, judges it on the whole occasions
between the cutoff and ``--until`` (default: the data's last day), logs and registers it; the gate is the
holdout RMSE of purchases per customer. ``crm run`` does not train it: the demo hotel chain is a
continuous-time business (its guests can book any day), which ``crm-clv`` models.
"""

from __future__ import annotations

import warnings
from datetime import date
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from crm_analytics.errors import NotReadyError
from crm_analytics.features.occasions import (
    OCCASION_COLUMNS,
    occasion_end,
    occasion_purchasers,
    occasion_summary,
    whole_occasions,
)
from crm_analytics.models.clv.bgbb import BGBBModel
from crm_analytics.models.clv.bgbb_evaluation import bgbb_figures, evaluate_bgbb
from crm_analytics.models.family import Gate, ModelFamily, TrainRequest, TrainResult
from crm_analytics.models.plots import log_figures
from crm_analytics.models.training import log_and_register, training_run
from crm_analytics.profiles.links import customer_transactions

NAME = "crm-bgbb"
EXAMPLE_PATTERNS = 3
MIN_PATTERN_CUSTOMERS = 10  # an example pattern is an aggregate, not one customer's history


class BGBBPyfunc(PythonModel):
    """Input: frequency, recency, n_periods (whole occasions). Output: P(alive) now and the expected
    purchases at the next ``occasions_ahead`` occasions (the holdout's length at training)."""

    def __init__(self, model: BGBBModel, occasions_ahead: int) -> None:
        self.model = model
        self.occasions_ahead = occasions_ahead

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "p_alive": self.model.probability_alive(model_input),
                "expected_purchases": self.model.expected_purchases(model_input, self.occasions_ahead),
            }
        )


def holdout_occasions(as_of: date, until: date, occasion_months: int) -> int:
    """Whole occasions in (``as_of``, ``until``]; a NotReadyError when there is none."""
    count = whole_occasions(as_of, until, occasion_months)
    if count < 1:
        raise NotReadyError(
            f"until: BG/BB is judged on whole occasions after the cutoff, and {until} (the data's last day "
            f"at the latest) is before the end of the first one, {occasion_end(as_of, occasion_months, 1)} "
            f"({occasion_months} months, CRM_BGBB_OCCASION_MONTHS)"
        )
    return count


def common_patterns(summary: pd.DataFrame) -> pd.DataFrame:
    """The most frequent (frequency, recency, n_periods) patterns held by at least
    ``MIN_PATTERN_CUSTOMERS`` customers each: an input example no one customer owns (a first-occasion
    pattern shared by nobody's history when none is that common)."""
    counts = summary.groupby(list(OCCASION_COLUMNS)).size().sort_values(ascending=False, kind="stable")
    common = counts[counts >= MIN_PATTERN_CUSTOMERS].head(EXAMPLE_PATTERNS).index.to_frame(index=False)
    if common.empty:
        common = pd.DataFrame([dict.fromkeys(OCCASION_COLUMNS, 0) | {"n_periods": 1}])
    return common.astype("int64")


def train(request: TrainRequest) -> TrainResult:
    """Fit on the occasions up to ``as_of``, judge on those up to ``until``, log and register."""
    months = request.settings.bgbb_occasion_months
    transactions = customer_transactions(request.warehouse.ibis)
    latest = transactions.timestamp.max().execute()
    if latest is None or pd.isna(latest):
        raise NotReadyError("warehouse: no transactions yet; ingest purchases first (`crm ingest`)")
    last_day = pd.Timestamp(latest).date()
    until = min(request.until or last_day, last_day)
    ahead = holdout_occasions(request.as_of, until, months)
    summary = occasion_summary(transactions, request.as_of, months, ahead).execute()
    purchasers = occasion_purchasers(transactions, request.as_of, months, ahead).execute()
    evaluation = evaluate_bgbb(
        summary.set_index("customer_id"), ahead, purchasers.set_index("occasion")["customers"]
    )
    labelled = summary.assign(as_of=pd.Timestamp(request.as_of))
    horizon_days = (occasion_end(request.as_of, months, ahead) - request.as_of).days
    with training_run(request.settings, NAME, labelled, horizon_days, "occasions", request.seed) as (
        run,
        tag,
    ):
        report = evaluation.report
        metrics = {f"holdout_{k}": v for k, v in report["holdout"]["bgbb"].items()}
        metrics |= {f"past_rate_holdout_{k}": v for k, v in report["holdout"]["past_rate"].items()}
        metrics["log_likelihood"] = report["log_likelihood"]
        for name, fitted in report["parameters"].items():
            metrics[f"param_{name}_se"] = fitted["se"]
        mlflow.log_params({f"param_{k}": round(v["estimate"], 6) for k, v in report["parameters"].items()})
        mlflow.log_params({"occasion_months": months, "holdout_occasions": ahead})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, "evaluation.json")
        log_figures(bgbb_figures(evaluation))
        example = common_patterns(summary[summary["n_periods"] >= 1])
        with warnings.catch_warnings():  # counts of occasions are whole numbers, never missing
            warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
            version = log_and_register(BGBBPyfunc(evaluation.model, ahead), example, NAME)
    return TrainResult(NAME, version, run.info.run_id, tag, metrics)


FAMILY = ModelFamily(
    key="bgbb",
    name=NAME,
    summary="discrete-time purchases (BG/BB) for businesses selling at fixed occasions",
    pyfunc=BGBBPyfunc,
    train=train,
    gate=Gate("holdout_purchases_rmse", higher_is_better=False),
    outputs={"p_alive": "double", "expected_purchases": "double"},
    trained_by_run=False,
)
