"""Evaluate a model family on a calibration/holdout split against its baselines (``crm evaluate``).

``clv``: the purchase models compared and selected by holdout error, CLV against the supervised spend
model. ``churn``: ours against the label-free baselines. ``offers``: the offer policy against random and
popularity (and the oracle on demo data) on the later offer log. Datasets: see ``evaluation_data``;
``donations`` (clv only): the discrete-time BG/BB on the donations data of Fader, Hardie & Shang (2010).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from crm_analytics.errors import InvalidInputError
from crm_analytics.jobs.common import Progress, no_progress
from crm_analytics.jobs.evaluation_data import (
    DATASETS,
    DEFAULT_SPLITS,
    load_evaluation_data,
    open_dataset,
    prepare_warehouse,
)
from crm_analytics.models import evaluation_plots
from crm_analytics.models.churn.evaluation import evaluate_churn
from crm_analytics.models.clv.bgbb import donations_report
from crm_analytics.models.clv.evaluation import evaluate_clv
from crm_analytics.models.offers.evaluation import evaluate_offers
from crm_analytics.settings import Settings

MODELS = ("clv", "churn", "offers")
DONATIONS = "donations"  # BG/BB, discrete time (models.clv.bgbb)


def evaluate(
    settings: Settings,
    model: str,
    dataset: str = "cdnow-sample",
    calibration_end: date | None = None,
    holdout_end: date | None = None,
    *,
    customers: int = 20_000,
    seed: int = 42,
    plots: Path | None = None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """The evaluation report (a JSON-ready document); with ``plots`` its figures saved there as PNG."""
    if model not in MODELS:
        raise InvalidInputError(f"MODEL: expected clv, churn or offers, got {model!r}")
    if dataset == DONATIONS:
        return _donations(model, calibration_end, holdout_end)
    if dataset not in DATASETS:
        raise InvalidInputError(
            f"--dataset: expected one of {', '.join((*DATASETS, DONATIONS))}, got {dataset!r}"
        )
    if model == "offers" and dataset not in ("demo", "warehouse"):
        raise InvalidInputError(
            "--dataset: offers are evaluated on demo or warehouse (CDNOW has no offer log)"
        )
    start, end = _split(dataset, calibration_end, holdout_end)
    if model == "offers":
        return _offers(settings, dataset, start, end, customers, seed, progress)
    data = load_evaluation_data(
        settings, dataset, start, end, customers=customers, seed=seed, status=progress
    )
    progress(f"fitting and evaluating {model} on {len(data.features):,} customers")
    if model == "clv":
        clv = evaluate_clv(
            data.features,
            data.horizon_days,
            data.time_unit,
            daily=data.daily,
            train_features=data.train_features,
            seed=seed,
            standard_errors=True,
            validation=data.validation,
            same_period=True,
        )
        report, figures = clv.report, evaluation_plots.clv_figures(clv, data.features)
    else:
        churn = evaluate_churn(
            data.features,
            data.horizon_days,
            data.time_unit,
            seed,
            train_features=data.train_features,
            same_period=True,
        )
        report, figures = churn.report, evaluation_plots.churn_figures(churn)
    result = {"dataset": dataset, **report}
    if plots is not None:
        result["plots"] = evaluation_plots.save_figures(figures, plots)
    return result


def _donations(model: str, calibration_end: date | None, holdout_end: date | None) -> dict[str, Any]:
    """BG/BB on the donations data (discrete time: six annual appeals, no holdout in the file)."""
    if model != "clv":
        raise InvalidInputError("--dataset: donations is a CLV dataset (BG/BB); evaluate clv on it")
    if calibration_end is not None or holdout_end is not None:
        raise InvalidInputError("--calibration-end/--holdout-end: donations has its own six occasions")
    return donations_report()


def _split(dataset: str, calibration_end: date | None, holdout_end: date | None) -> tuple[date, date]:
    """The calibration and holdout ends given, or the dataset's own split."""
    default = DEFAULT_SPLITS.get(dataset)
    if default is None and (calibration_end is None or holdout_end is None):
        raise InvalidInputError(f"--calibration-end and --holdout-end: needed for --dataset {dataset}")
    start = calibration_end or default[0]
    end = holdout_end or default[1]
    if end <= start:
        raise InvalidInputError("--holdout-end: must come after --calibration-end")
    return start, end


def _offers(
    settings: Settings, dataset: str, start: date, end: date, customers: int, seed: int, progress: Progress
) -> dict[str, Any]:
    """The offer policies on the offer log after the split; the oracle only where a truth folder exists."""
    url, raw = prepare_warehouse(settings, dataset, customers, seed, progress)
    progress("training the acceptance models and evaluating the policies")
    with open_dataset(settings, url) as warehouse:
        report = evaluate_offers(warehouse.ibis, raw / "truth" if raw else None, start, end, seed=seed)
    return {"dataset": dataset, **report}
