"""The CLV family (``crm-clv``): the purchase model chosen on a validation window, Gamma-Gamma spend, CLV
with its 90% interval recalibrated on that window; trained on a labelled build, gated on the holdout
Spearman of predicted value."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from crm_analytics.features.repeat_purchases import daily_repeat_purchases
from crm_analytics.features.rfm import BTYD_COLUMNS, DAYS_PER_UNIT
from crm_analytics.models.clv.calibration import ValidationWindow, validation_window
from crm_analytics.models.clv.evaluation import evaluate_clv
from crm_analytics.models.clv.interval_levels import IntervalLevels
from crm_analytics.models.clv.model import CLVModel
from crm_analytics.models.clv.uncertainty import value_distribution
from crm_analytics.models.evaluation_plots import clv_figures
from crm_analytics.models.family import Gate, ModelFamily, TrainRequest, TrainResult, predict_by_customer
from crm_analytics.models.gate_evidence import Guard
from crm_analytics.models.metrics import spearman, top_decile_capture
from crm_analytics.models.plots import log_figures
from crm_analytics.models.training import (
    labelled_build,
    log_and_register,
    prepare,
    quantile_example,
    training_run,
)
from crm_analytics.profiles.links import customer_transactions
from crm_analytics.settings import Settings

NAME = "crm-clv"
INTERVAL_LEVEL = 0.9


class CLVPyfunc(PythonModel):
    """Input: frequency, recency, T, monetary_value. Output: P(alive), expected purchases and spend over the
    training horizon, 12-month CLV (1% monthly discount) with its 90% interval (``clv.uncertainty``).

    ``levels``: the interval's quantile levels per calibration-frequency group, recalibrated on the
    validation window's spend (``clv.calibration``); None (or a version logged before them): nominal.
    They are fitted on spend over the window's horizon and applied to the 12-month value, on the reading
    that a group's miscalibration comes from the model's form, not from the horizon.
    """

    def __init__(self, model: CLVModel, horizon_periods: float, levels: IntervalLevels | None = None) -> None:
        self.model = model
        self.horizon_periods = horizon_periods
        self.levels = levels

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        levels = getattr(self, "levels", None)  # versions pickled before recalibration have none
        interval = value_distribution(
            self.model, model_input.reset_index(drop=True), level=INTERVAL_LEVEL, levels=levels
        )
        return pd.DataFrame(
            {
                "p_alive": self.model.probability_alive(model_input),
                "expected_purchases": self.model.expected_purchases(model_input, self.horizon_periods),
                "expected_spend": self.model.expected_spend(model_input),
                "clv": self.model.clv(model_input),
                "clv_low": interval["clv_low"].to_numpy(),
                "clv_high": interval["clv_high"].to_numpy(),
            }
        )


METRIC_GROUP_NAMES = {"0": "0", "1-2": "1_2", "3+": "3plus", "all": "all"}  # MLflow names take no '+'


def train_clv(
    settings: Settings,
    features: pd.DataFrame,
    horizon_days: int,
    time_unit: str = "weeks",
    seed: int = 0,
    daily: pd.DataFrame | None = None,
    validation: ValidationWindow | None = None,
) -> TrainResult:
    """Fit every purchase model on the calibration summary, keep the one with the lowest error on the
    ``validation`` window (the holdout's without one); log and register it. ``daily`` (repeat purchases
    per day) adds the weekly tracking plot."""
    features = prepare(features)
    with training_run(settings, NAME, features, horizon_days, time_unit, seed) as (run, holdout):
        evaluation = evaluate_clv(
            features, horizon_days, time_unit, daily=daily, seed=seed, validation=validation
        )
        model = evaluation.models[evaluation.selected]
        report = evaluation.report
        value = report["value"]
        metrics = {f"holdout_{k}": v for k, v in value["btyd_gamma_gamma"].items()}
        metrics |= {f"supervised_holdout_{k}": v for k, v in value["supervised"].items()}
        metrics["spend_excluded"] = float(model.spend_excluded_.count)
        intervals = report["intervals"]  # the randomized PIT's share in the central 90%, per group too
        metrics["interval_pit_central_share"] = intervals["randomized_pit_central_share"]
        for group, row in intervals["coverage_by_calibration_frequency"].items():
            metrics[f"interval_coverage_{METRIC_GROUP_NAMES[group]}"] = row["coverage"]
        for name, errors in report["purchase_models"].items():
            metrics |= {f"{name}_{k}": v for k, v in errors.items() if isinstance(v, float)}
        mlflow.log_params({f"param_{k}": round(v, 6) for k, v in model.params_.items()})
        mlflow.log_params(
            {
                "purchase_model": model.purchase_model,
                "selected_by": report["selection_metric"],
                "selected_on": report["selected_on"],
                "retried": ";".join(model.retried_) or "no",
                "parameter_sets": len(model.parameter_sets_ or []),
                "interval_levels": "recalibrated" if evaluation.interval_levels else "nominal",
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, "evaluation.json")
        log_figures(clv_figures(evaluation, features))
        horizon = horizon_days / DAYS_PER_UNIT[time_unit]
        example = quantile_example(features[list(BTYD_COLUMNS)])
        pyfunc = CLVPyfunc(model, horizon, evaluation.interval_levels)
        version = log_and_register(pyfunc, example, NAME)
    return TrainResult(NAME, version, run.info.run_id, holdout, metrics)


def train(request: TrainRequest) -> TrainResult:
    """Train on the stored labelled build at ``as_of``, with the daily repeat purchases of its horizon and
    the validation window at the end of its calibration period."""
    build = labelled_build(request.warehouse, request.as_of)
    until = request.as_of + timedelta(days=build.horizon_days)
    transactions = customer_transactions(request.warehouse.ibis)
    daily = daily_repeat_purchases(transactions, request.as_of, until).execute()
    validation = validation_window(request.warehouse.ibis, request.as_of, build.horizon_days, build.time_unit)
    return train_clv(
        request.settings,
        build.features,
        build.horizon_days,
        build.time_unit,
        request.seed,
        daily,
        validation,
    )


def holdout_spend_of(loaded: Any, features: pd.DataFrame) -> np.ndarray:
    """A loaded version's expected spend over its training horizon: what ``holdout_spearman`` ranks (the
    served pyfunc's expected_purchases x expected_spend, without its interval simulation)."""
    pyfunc: CLVPyfunc = loaded.unwrap_python_model()
    inputs = features[list(BTYD_COLUMNS)]
    return pyfunc.model.expected_purchases(inputs, pyfunc.horizon_periods) * pyfunc.model.expected_spend(
        inputs
    )


def score(model: Any, features: pd.DataFrame) -> pd.DataFrame:
    """The CLV champion's outputs for feature rows indexed by customer id."""
    return predict_by_customer(model, features[list(BTYD_COLUMNS)], features.index)


FAMILY = ModelFamily(
    key="clv",
    name=NAME,
    summary="customer lifetime value: BTYD purchase model x Gamma-Gamma spend, with a 90% interval",
    pyfunc=CLVPyfunc,
    train=train,
    gate=Gate(
        "holdout_spearman",
        label="holdout_spend",
        comparison=lambda loaded, warehouse, features, tag: holdout_spend_of(loaded, features),
        statistic=spearman,
        guards=(Guard("top_decile_capture", top_decile_capture, tolerance=0.01),),
        min_gain_setting="gate_min_gain_clv",
    ),
    score=score,
    outputs={
        name: "double"
        for name in ("p_alive", "expected_purchases", "expected_spend", "clv", "clv_low", "clv_high")
    },
    served=True,
)
