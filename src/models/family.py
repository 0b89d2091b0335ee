"""A model family as data: one record that training, promotion, batch scoring, Spark scoring and the API
read, so adding a family is one module that defines its record plus one entry in ``registry.FAMILIES``.

A family's module defines its pyfunc (what the registry stores and serving loads), how it trains on the
warehouse (``train``: a :class:`TrainRequest` in, a :class:`TrainResult` out, the version registered in
MLflow), the gate a new version must pass to become ``@champion``, and how it scores a batch of
customers (``score``: the loaded pyfunc and the feature rows in, one row of outputs per customer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from crm_analytics.models.gate_evidence import Guard
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse


@dataclass(frozen=True)
class Gate:
    """The holdout metric a candidate must beat the champion on (same holdout tag).

    With ``label``, ``comparison`` and ``statistic`` the gate weighs evidence (``models.gate_evidence``):
    ``comparison`` gives a version's scores for the customers of the stored build at the holdout's cutoff
    (loaded version, warehouse, that build prepared, the holdout tag -> one score per row) from a fit
    that never saw their labels, and the candidate must gain at least the Setting ``min_gain_setting``
    on ``statistic`` (scores against the build's ``label``) with a paired bootstrap 95% interval above
    zero, no guard worse beyond its tolerance. Without them the logged ``metric`` values are compared.
    """

    metric: str
    higher_is_better: bool = True
    label: str | None = None
    comparison: Callable[[Any, Warehouse, pd.DataFrame, str], np.ndarray] | None = None
    statistic: Callable[[np.ndarray, np.ndarray], float] | None = None
    guards: tuple[Guard, ...] = ()
    min_gain_setting: str | None = None


@dataclass(frozen=True)
class TrainRequest:
    """What ``crm train`` passes a family: the warehouse, the cutoff (offers: the split) and options."""

    settings: Settings
    warehouse: Warehouse
    as_of: date
    seed: int = 0
    until: date | None = None  # offers: the last day of the held-out offer log
    truth: Path | None = None  # offers: the demo data's truth folder (exact values, the oracle)


@dataclass(frozen=True)
class TrainResult:
    """A trained, logged and registered version."""

    model: str
    version: str
    run_id: str
    holdout: str
    metrics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Segmentation:
    """A segment family: a segmenter fitted on the feature table or on the champions' scores."""

    make: Callable[[int], Any]  # seed -> an unfitted segmenter (fit/transform/definition)
    column: str  # the segmenter's output column that holds the segment name
    fit_on: Literal["features", "scores"]
    stability: bool = False  # check on two halves before registering (clusters)


ScoreBatch = Callable[[Any, pd.DataFrame], pd.DataFrame]


def predict_by_customer(model: Any, inputs: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """A loaded pyfunc's outputs for ``inputs`` (positional rows), indexed by ``index`` (customer ids)."""
    outputs: pd.DataFrame = model.predict(inputs.reset_index(drop=True))
    outputs.index = index
    return outputs


@dataclass(frozen=True)
class ModelFamily:
    """One family of models: see the module docstring."""

    key: str  # what people type: `crm train clv`
    name: str  # the registered model: crm-clv
    summary: str
    pyfunc: type[PythonModel]
    train: Callable[[TrainRequest], TrainResult] | None = None  # None: trained by the segments build
    gate: Gate | None = None  # None: every new version becomes champion (a definition, not a prediction)
    score: ScoreBatch | None = None  # (loaded pyfunc, features indexed by customer) -> outputs by customer
    outputs: Mapping[str, str] = field(default_factory=dict)  # score column -> Spark SQL type
    served: bool = False  # the API loads its champion
    segmentation: Segmentation | None = None
    trained_by_run: bool = True  # `crm run` trains it on the demo chain (not BG/BB: the hotels sell any day)
