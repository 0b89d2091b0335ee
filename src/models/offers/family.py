"""The offers family (``crm-offers``): train the acceptance models, evaluate the policy offline, log and
register; served at booking time (never batch-scored).

The run logs the offline evaluation (``evaluation.json``; IPS values of ours, random and popularity,
and on demo data the exact values and the oracle), the acceptance model's ROC AUC and Brier score,
and a pyfunc returning P(accept) for booking/offer rows (with the guest's history columns when known).
The gate metric is ``ips_value``: our policy's margin per booking on the held-out log, estimated by
clipped, self-normalised IPS (``evaluation.policy_values``). The run's ``holdout`` tag names the
estimator with the split, so the gate never compares it with a champion judged another way (the
unclipped IPS of earlier versions): retrain the champion on the same split, or ``--force --reason``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from ibis.backends import BaseBackend
from mlflow.pyfunc import PythonModel

from crm_analytics.errors import InvalidInputError
from crm_analytics.models.family import Gate, ModelFamily, TrainRequest, TrainResult
from crm_analytics.models.offers.acceptance import AcceptanceModel
from crm_analytics.models.offers.evaluation import MAX_IMPORTANCE_WEIGHT, fit_and_evaluate
from crm_analytics.models.training import log_and_register
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure, use_experiment

NAME = "crm-offers"


class OffersPyfunc(PythonModel):
    """Input: booking and offer columns, and the guest's history columns (all empty for an unknown guest).
    Output: P(accept), from the full model for guests with history, the context-only one otherwise."""

    def __init__(self, full: AcceptanceModel, context: AcceptanceModel) -> None:
        self.full = full
        self.context = context

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        history = [c for c in self.full.customer_columns_ if c in model_input.columns]
        known = (
            model_input[history].notna().any(axis=1).to_numpy()
            if history
            else np.zeros(len(model_input), bool)
        )
        p = np.empty(len(model_input))
        if known.any():
            p[known] = self.full.predict_proba(model_input[known])
        if (~known).any():
            p[~known] = self.context.predict_proba(model_input[~known])
        return pd.DataFrame({"p_accept": p})


def train_offers(
    settings: Settings,
    con: BaseBackend,
    split: date,
    end: date,
    truth_dir: Path | None = None,
    seed: int = 0,
) -> TrainResult:
    """Learn from the offer log up to ``split``, judge on (split, end], log and register ``crm-offers``."""
    configure(settings)
    use_experiment(settings, NAME)
    evaluation = fit_and_evaluate(con, truth_dir, split, end, seed=seed)
    report = evaluation.report
    holdout = f"{split}..{end}:{report['test_events']}:snips-w{MAX_IMPORTANCE_WEIGHT:g}"
    with mlflow.start_run(run_name=NAME) as run:
        mlflow.log_params(
            {"split": str(split), "end": str(end), "seed": seed, "truth": truth_dir is not None}
        )
        mlflow.set_tags({"holdout": holdout})
        metrics = {
            "ips_value": report["policies"]["ours"]["ips"],
            "ips_random": report["policies"]["random"]["ips"],
            "ips_popularity": report["policies"]["popularity"]["ips"],
            "acceptance_roc_auc": report["acceptance"]["roc_auc"],
            "acceptance_brier": report["acceptance"]["brier"],
        }
        if "oracle" in report["policies"]:
            metrics["exact_value"] = report["policies"]["ours"]["exact"]
            metrics["share_of_oracle"] = report["policies"]["ours"]["share_of_oracle"]
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, "evaluation.json")
        version = log_and_register(
            OffersPyfunc(evaluation.full, evaluation.context), evaluation.example, NAME
        )
    return TrainResult(NAME, version, run.info.run_id, holdout, metrics)


def train(request: TrainRequest) -> TrainResult:
    """Learn from the offer log up to ``as_of`` (the split), judge on (split, ``until``]."""
    if request.until is None:
        raise InvalidInputError("--until: needed for offers (the end of the held-out offer log)")
    if request.until <= request.as_of:
        raise InvalidInputError("--until: must come after --as-of (the split)")
    return train_offers(
        request.settings, request.warehouse.ibis, request.as_of, request.until, request.truth, request.seed
    )


FAMILY = ModelFamily(
    key="offers",
    name=NAME,
    summary="next-best offers: P(accept) of each eligible offer at booking time, ranked by expected margin",
    pyfunc=OffersPyfunc,
    train=train,
    gate=Gate("ips_value"),
    served=True,
)
