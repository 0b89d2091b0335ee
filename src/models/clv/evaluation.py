"""Evaluate the CLV model on a calibration/holdout split; the purchase model is chosen on a validation window.

Every purchase model (BG/NBD, Pareto/NBD, MBG/NBD) is fitted on the calibration summary only; the
holdout labels (``holdout_purchase_days``, ``holdout_spend``) are what they are judged on:

- holdout totals, actual against predicted, and the individual errors (MAE, RMSE) of holdout purchases;
- conditional expectations: mean holdout purchases by calibration frequency 0..6, 7+ (Fader, Hardie &
  Lee's check), actual against each model;
- predictive checks of the selected model (``predictive_checks``): customers by repeat purchases in the
  calibration period and by purchases in the holdout, actual against the model's;
- the purchase model is selected by its RMSE of purchases on the validation window (each refitted on
  the calibration period before it; the predictions are means), so the holdout judges a choice it did
  not make; without a window (too little history) the holdout selects, and the report says so;
- 90% intervals from posterior-predictive simulation (``uncertainty``) are checked against the holdout,
  per calibration-frequency group by the randomized PIT, and recalibrated on a validation window inside
  the calibration period when one is given (``calibration``);
- value: the selected model x Gamma-Gamma against the supervised spend model (scored out of fold, or
  trained on an earlier cutoff when one is given), on exactly the same customers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, get_args

import numpy as np
import pandas as pd

from crm_analytics.features.rfm import DAYS_PER_UNIT
from crm_analytics.models.churn.model import btyd_features
from crm_analytics.models.clv.calibration import (
    ValidationWindow,
    coverage_by_group,
    holdout_pit,
    validation_levels,
)
from crm_analytics.models.clv.interval_levels import IntervalLevels, calibration_frequency_group
from crm_analytics.models.clv.model import CLVModel, ConvergenceError, PurchaseModel
from crm_analytics.models.clv.predictive_checks import (
    holdout_purchase_histogram,
    repeat_purchase_histogram,
)
from crm_analytics.models.clv.spend import SpendModel, out_of_fold_spend
from crm_analytics.models.clv.uncertainty import holdout_distribution
from crm_analytics.models.inputs import model_inputs
from crm_analytics.models.metrics import bootstrap_difference, spearman, value_metrics

log = logging.getLogger(__name__)

PURCHASE_MODELS: tuple[str, ...] = get_args(PurchaseModel)
# squared error: the predictions are expected values (MAE would reward predicting the median, 0)
SELECTION_METRIC = "holdout_purchases_rmse"
INTERVAL_LEVEL = 0.9
FREQUENCY_BUCKETS = ("0", "1", "2", "3", "4", "5", "6", "7+")


@dataclass
class CLVEvaluation:
    """The evaluation's JSON-ready report plus the tables its plots are drawn from."""

    report: dict[str, Any]
    models: dict[str, CLVModel]
    selected: str
    conditional: pd.DataFrame
    tracking: pd.DataFrame | None = None
    holdout_spend_predictions: dict[str, np.ndarray] = field(default_factory=dict)
    holdout_pit: np.ndarray | None = None  # the selected model's randomized PIT of each holdout spend
    predictive_checks: dict[str, pd.DataFrame] = field(default_factory=dict)  # customers per bucket
    interval_levels: IntervalLevels | None = None  # recalibrated on the validation window, if there was one


def frequency_buckets(frequency: np.ndarray) -> np.ndarray:
    """Calibration frequency as the labels 0..6 and 7+."""
    capped = np.minimum(np.asarray(frequency, dtype=int), len(FREQUENCY_BUCKETS) - 1)
    return np.asarray(FREQUENCY_BUCKETS, dtype=object)[capped]


def conditional_expectations(
    frequency: np.ndarray, actual: np.ndarray, predicted: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Mean holdout purchases per calibration-frequency bucket: customers, actual and each model's."""
    frame = pd.DataFrame({"bucket": frequency_buckets(frequency), "actual": actual, **predicted})
    grouped = frame.groupby("bucket")
    table = grouped.mean().join(grouped.size().rename("customers"))
    table = table.reindex([b for b in FREQUENCY_BUCKETS if b in table.index])
    table.index.name = "frequency"
    return table[["customers", "actual", *predicted]]


def fit_purchase_models(
    summary: pd.DataFrame, time_unit: str, names: tuple[str, ...] = PURCHASE_MODELS, must_fit: bool = True
) -> tuple[dict[str, CLVModel], dict[str, str]]:
    """Fit each purchase model; one that does not converge is reported, not fatal (returns fitted, failed).
    ``must_fit``: raise when none converges."""
    fitted: dict[str, CLVModel] = {}
    failed: dict[str, str] = {}
    for name in names:
        try:
            fitted[name] = CLVModel(purchase_model=name, time_unit=time_unit).fit(summary)
        except ConvergenceError as exc:
            log.warning("%s left out of the comparison: %s", name, exc)
            failed[name] = str(exc)
    if not fitted and must_fit:
        raise ConvergenceError(f"no purchase model converged: {failed}")
    return fitted, failed


def purchase_errors(model: CLVModel, features: pd.DataFrame, horizon: float) -> dict[str, float]:
    """Holdout purchases: totals (actual, predicted), individual MAE and RMSE, log-likelihood if defined."""
    actual = features["holdout_purchase_days"].to_numpy(float)
    predicted = model.expected_purchases(features, horizon)
    errors = {
        "holdout_purchases_actual": float(actual.sum()),
        "holdout_purchases_predicted": float(predicted.sum()),
        "holdout_purchases_total_error": float((predicted.sum() - actual.sum()) / max(actual.sum(), 1.0)),
        "holdout_purchases_mae": float(np.abs(predicted - actual).mean()),
        "holdout_purchases_rmse": float(np.sqrt(((predicted - actual) ** 2).mean())),
    }
    errors["log_likelihood"] = model.log_likelihood()
    return errors


def validation_errors(
    fitted: dict[str, CLVModel], validation: ValidationWindow
) -> dict[str, dict[str, float]]:
    """Purchase models fitted on the data before the validation cutoff, judged on the window's purchases
    (a model predicting non-finite values is left out)."""
    window = validation.features
    days = validation.horizon_days
    judged = {
        name: purchase_errors(model, window, days / DAYS_PER_UNIT[model.time_unit])
        for name, model in fitted.items()
    }
    return {name: e for name, e in judged.items() if np.isfinite(e[SELECTION_METRIC])}


def add_parameter_uncertainty(model: CLVModel, seed: int = 0) -> bool:
    """Give ``model`` Laplace draws of its purchase parameters for its intervals; False (logged) when its
    Hessian is not positive definite, and the intervals then use the estimates alone."""
    try:
        model.add_parameter_uncertainty(seed=seed)
    except (ConvergenceError, np.linalg.LinAlgError) as exc:
        log.warning("%s intervals without parameter uncertainty: %s", model.purchase_model, exc)
        return False
    return True


def standard_errors_of(model: CLVModel) -> dict[str, float]:
    """Every fitted parameter's standard error (``CLVModel.summary``: a numerical Hessian, a second or
    more on large fits, so for ``crm evaluate`` only)."""
    return {str(name): float(se) for name, se in model.summary["se(coef)"].items()}


def tracking_table(
    model: CLVModel, features: pd.DataFrame, daily: pd.DataFrame, as_of: date, until: date
) -> pd.DataFrame:
    """Weekly cumulative repeat purchases, actual and expected, from the first customer's first week.

    Expected = sum over customers of the model's unconditional E[X(t)], t = time since their first
    purchase (births are as_of - T); ``daily`` holds the actual counts (``features.tracking``).
    """
    unit_days = DAYS_PER_UNIT[model.time_unit]
    birth_offsets = np.rint(features["T"].to_numpy(float) * unit_days).astype(int)  # days before as_of
    offsets, cohort_sizes = np.unique(birth_offsets, return_counts=True)
    births = pd.Timestamp(as_of) - pd.to_timedelta(offsets, unit="D")
    first = births.min()
    week_ends = pd.date_range(first + timedelta(days=7), pd.Timestamp(until), freq="7D")
    if week_ends.empty or week_ends[-1] != pd.Timestamp(until):
        week_ends = week_ends.append(pd.DatetimeIndex([pd.Timestamp(until)]))  # the last, partial week
    ages = (week_ends.to_numpy()[None, :] - births.to_numpy()[:, None]) / np.timedelta64(1, "D") / unit_days
    expected_by_cohort = np.asarray(
        model.purchases_.expected_number_of_purchases_up_to_time(np.clip(ages, 0, None)), dtype=float
    )
    expected = (np.where(ages > 0, expected_by_cohort, 0.0) * cohort_sizes[:, None]).sum(axis=0)
    counts = daily.assign(day=pd.to_datetime(daily["day"])).set_index("day")["repeat_purchases"]
    actual = counts.cumsum().reindex(week_ends, method="ffill").fillna(0.0)
    return pd.DataFrame({"week": week_ends, "actual": actual.to_numpy(float), "expected": expected})


def supervised_spend(
    features: pd.DataFrame,
    horizon: float,
    time_unit: str,
    seed: int,
    train_features: pd.DataFrame | None = None,
    clv: CLVModel | None = None,
) -> np.ndarray:
    """Holdout spend from the Poisson GBM: out of fold, or trained on the earlier cutoff when given.

    ``clv``: a BG/NBD model already fitted on the table the GBM learns from, to reuse.
    """
    fit_on = features if train_features is None else train_features
    clv = clv if clv is not None else CLVModel(time_unit=time_unit).fit(fit_on)
    inputs = model_inputs(features.join(btyd_features(clv, features, horizon)))
    if train_features is None:
        return out_of_fold_spend(SpendModel(seed=seed), inputs, features["holdout_spend"].astype(float))
    train_inputs = model_inputs(train_features.join(btyd_features(clv, train_features, horizon)))
    model = SpendModel(seed=seed).fit(train_inputs, train_features["holdout_spend"].astype(float))
    return model.predict(inputs)


def interval_coverage(
    model: CLVModel,
    features: pd.DataFrame,
    horizon: float,
    seed: int,
    level: float = INTERVAL_LEVEL,
    validation: ValidationWindow | None = None,
    before_window: CLVModel | None = None,
) -> tuple[dict[str, Any], np.ndarray, IntervalLevels | None]:
    """How often the holdout's actual spend and purchases fall inside the model's intervals at ``level``,
    the holdout spend's randomized PITs (``clv.calibration``) and the levels recalibrated on ``validation``
    (None without one).

    The inclusive intervals cover more than ``level`` because most customers buy nothing in a holdout;
    P(any purchase) is compared with the actual share as a check of the probabilities. The randomized
    PIT gives the coverage per calibration-frequency group, and with a ``validation`` window the
    coverage of intervals recalibrated on it (``before_window``: the model already refitted before it).
    """
    predicted = holdout_distribution(model, features, horizon, level=level, seed=seed)
    spend = features["holdout_spend"].to_numpy(float)
    purchases = features["holdout_purchase_days"].to_numpy(float)
    groups = calibration_frequency_group(features["frequency"])
    pit = holdout_pit(model, features, horizon, spend, seed=seed)
    levels = validation_levels(model, validation, level, seed, before_window) if validation else None
    report = {
        "level": level,
        "parameter_uncertainty": bool(getattr(model, "parameter_sets_", None)),
        "spend_coverage": float(
            ((spend >= predicted["spend_low"]) & (spend <= predicted["spend_high"])).mean()
        ),
        "purchases_coverage": float(
            ((purchases >= predicted["purchases_low"]) & (purchases <= predicted["purchases_high"])).mean()
        ),
        "p_any_purchase_predicted": float(1 - predicted["p_no_purchase"].mean()),
        "any_purchase_actual": float((purchases > 0).mean()),
        "randomized_pit_central_share": float(IntervalLevels.nominal(level).covered(pit, groups).mean()),
        "coverage_by_calibration_frequency": coverage_by_group(pit, groups, level, levels),
        "recalibration": None
        if levels is None or validation is None
        else {
            "validation_window": [validation.cutoff, str(features["as_of"].iloc[0])[:10]],
            "levels": {group: list(bounds) for group, bounds in levels.by_group.items()},
        },
    }
    return report, pit, levels


def by_customer(features: pd.DataFrame) -> pd.DataFrame:
    """The table indexed by customer_id (as it comes from the store, or already indexed)."""
    return features.set_index("customer_id") if "customer_id" in features.columns else features


def evaluate_clv(
    features: pd.DataFrame,
    horizon_days: int,
    time_unit: str,
    *,
    daily: pd.DataFrame | None = None,
    train_features: pd.DataFrame | None = None,
    seed: int = 0,
    standard_errors: bool = False,
    validation: ValidationWindow | None = None,
    same_period: bool = False,
) -> CLVEvaluation:
    """Fit every purchase model on the calibration data, judge it on the holdout, select the best.

    ``features``: a labelled feature table (one row per customer). ``daily``: repeat purchases per day
    for the tracking plot. ``train_features``: an earlier labelled cutoff to train the supervised spend
    model on (otherwise it is scored out of fold at this cutoff). ``standard_errors``: each purchase
    model's parameters' standard errors in the report too. ``validation``: a window inside the
    calibration period to choose the purchase model and recalibrate the intervals on
    (``clv.calibration``). ``same_period``: with ``train_features``, the supervised model's out-of-fold
    scores at this cutoff too, labelled.
    """
    features = by_customer(features)
    train_features = None if train_features is None else by_customer(train_features)
    horizon = horizon_days / DAYS_PER_UNIT[time_unit]
    models, failed = fit_purchase_models(features, time_unit)
    errors = {name: purchase_errors(model, features, horizon) for name, model in models.items()}
    for name in [n for n, e in errors.items() if not np.isfinite(e[SELECTION_METRIC])]:
        failed[name] = (
            "its holdout predictions are not finite (lifetimes overflows on long histories; "
            "time in weeks usually helps)"
        )
        del errors[name], models[name]
    if not models:
        raise ConvergenceError(f"no purchase model gave finite predictions: {failed}")
    before_window: dict[str, CLVModel] = {}  # each purchase model refitted before the validation cutoff
    if validation is not None:
        before_window = fit_purchase_models(validation.features, time_unit, tuple(models), must_fit=False)[0]
    judged = validation_errors(before_window, validation) if validation is not None else {}
    selected = min(judged or errors, key=lambda name: (judged or errors)[name][SELECTION_METRIC])
    chosen = models[selected]
    conditional = conditional_expectations(
        features["frequency"].to_numpy(),
        features["holdout_purchase_days"].to_numpy(float),
        {name: m.expected_purchases(features, horizon) for name, m in models.items()},
    )
    spend = features["holdout_spend"].to_numpy(float)
    predicted_spend = {
        "btyd_gamma_gamma": chosen.expected_purchases(features, horizon) * chosen.expected_spend(features),
        "supervised": supervised_spend(
            features,
            horizon,
            time_unit,
            seed,
            train_features,
            clv=models.get("bgnbd") if train_features is None else None,
        ),
    }
    if same_period and train_features is not None:  # labelled: it learns the holdout period's level
        bgnbd = models.get("bgnbd")
        folds = supervised_spend(features, horizon, time_unit, seed, clv=bgnbd)
        predicted_spend["supervised_same_period_folds"] = folds
    value = {name: value_metrics(spend, p) for name, p in predicted_spend.items()}
    for name, p in predicted_spend.items():
        value[name] |= {"holdout_spend_predicted": float(p.sum())}
    as_of = pd.Timestamp(features["as_of"].iloc[0]).date()
    report = {
        "customers": len(features),
        "time_unit": time_unit,
        "calibration_end": str(as_of),
        "holdout_end": str(as_of + timedelta(days=horizon_days)),
        "purchase_models": {
            name: {"params": models[name].params_, **errors[name]}
            | ({"standard_errors": standard_errors_of(models[name])} if standard_errors else {})
            for name in models
        },
        "failed": failed,
        "selected": selected,
        "selection_metric": SELECTION_METRIC,
        # chosen on the validation window, the holdout reports; without a window the holdout chose too
        "selected_on": f"validation window from {validation.cutoff}" if judged and validation else "holdout",
        "validation": {name: e[SELECTION_METRIC] for name, e in judged.items()},
        "spend_excluded": chosen.spend_excluded_.count,
        "conditional_expectations": conditional.reset_index().to_dict(orient="records"),
        "holdout_spend_actual": float(spend.sum()),
        "value": value,
        "value_winner": max(value, key=lambda name: value[name]["spearman"]),
        "value_margin_spearman": _value_margin(spend, predicted_spend, seed),
        "supervised_validation": supervised_validation(features, train_features, horizon_days),
    }
    for model in (chosen, before_window.get(selected)):  # what training serves: the fit's uncertainty too
        if model is not None:
            add_parameter_uncertainty(model, seed)
    checks = {
        "calibration_repeat_purchases": repeat_purchase_histogram(chosen, features, seed=seed),
        "holdout_purchases": holdout_purchase_histogram(
            chosen, features, horizon, features["holdout_purchase_days"].to_numpy(float), seed=seed
        ),
    }
    report["predictive_checks"] = {
        name: table.reset_index().to_dict(orient="records") for name, table in checks.items()
    }
    refitted = before_window.get(selected)  # none when the chosen model failed before the window
    report["intervals"], pit, levels = interval_coverage(
        chosen, features, horizon, seed, validation=validation if refitted else None, before_window=refitted
    )
    tracking = (
        tracking_table(chosen, features, daily, as_of, as_of + timedelta(days=horizon_days))
        if daily is not None
        else None
    )
    return CLVEvaluation(
        report, models, selected, conditional, tracking, predicted_spend, pit, checks, levels
    )


def supervised_validation(
    features: pd.DataFrame, train_features: pd.DataFrame | None, horizon_days: int
) -> str:
    """How a supervised model (spend, churn) was validated: out of time from the earlier cutoff (whose
    labels end at this cutoff; their horizon named when shorter than this one's), or out of fold."""
    if train_features is None:
        return "5-fold out of fold"
    earlier = pd.Timestamp(train_features["as_of"].iloc[0]).date()
    days = (pd.Timestamp(features["as_of"].iloc[0]).date() - earlier).days
    label = f"earlier cutoff {earlier}"
    return label if days >= horizon_days else f"{label} ({days}-day labels)"


def _value_margin(spend: np.ndarray, predicted: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """The supervised spend model's Spearman minus the BTYD model's, with a paired bootstrap 95% interval
    over customers (200 resamples); None when the holdout spend does not vary."""
    if spend.min() == spend.max():
        return {"supervised_minus_btyd": None, "interval": None}
    margin = bootstrap_difference(
        spend, predicted["supervised"], predicted["btyd_gamma_gamma"], metric=spearman, samples=200, seed=seed
    )
    return {"supervised_minus_btyd": margin["difference"], "interval": [margin["low"], margin["high"]]}
