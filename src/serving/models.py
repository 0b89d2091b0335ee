"""The models the API serves: loaded from the registry's ``@champion`` aliases, swapped when they move.

:class:`ModelHolder` keeps one immutable :class:`ServedModels`; a request takes a reference at its start,
so a reload in the background never changes the models under a running request. ``reload_if_moved``
compares the aliases with the loaded versions and loads a moved champion completely (and warms it up)
before swapping; a failed load is logged and the old models keep serving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from crm_analytics.models.offers.acceptance import AcceptanceModel
from crm_analytics.models.offers.train import OFFERS_NAME
from crm_analytics.models.registry import CHAMPION
from crm_analytics.models.train import CHURN_NAME, CLV_NAME

SERVED = (CLV_NAME, CHURN_NAME, OFFERS_NAME)
log = logging.getLogger("crm_analytics.serving")


@dataclass(frozen=True)
class ServedModels:
    """One consistent set of champions."""

    versions: dict[str, str]
    run_ids: dict[str, str]
    loaded_at: datetime
    clv: Any  # mlflow pyfunc
    churn: Any  # mlflow pyfunc
    offers_full: AcceptanceModel
    offers_context: AcceptanceModel
    churn_columns: list[str] = field(default_factory=list)

    def header(self) -> str:
        """``crm-clv=3,crm-churn=2,crm-offers=1``: the versions a response was computed with."""
        return ",".join(f"{name}={version}" for name, version in sorted(self.versions.items()))


def champion_versions(client: MlflowClient) -> dict[str, tuple[str, str]]:
    """name -> (version, run id) of each served model's @champion; LookupError naming a missing one."""
    out = {}
    for name in SERVED:
        try:
            version = client.get_model_version_by_alias(name, CHAMPION)
        except mlflow.exceptions.MlflowException:
            raise LookupError(f"{name}: no @{CHAMPION}; run `crm run` or `crm promote {name}`") from None
        out[name] = (str(version.version), str(version.run_id))
    return out


def load_models(client: MlflowClient) -> ServedModels:
    """Load and warm up the champions (one prediction each), so a ready service answers fast."""
    found = champion_versions(client)
    loaded = {name: mlflow.pyfunc.load_model(f"models:/{name}/{v}") for name, (v, _) in found.items()}
    offers = loaded[OFFERS_NAME].unwrap_python_model()
    churn_columns = list(loaded[CHURN_NAME].metadata.get_input_schema().input_names())
    models = ServedModels(
        versions={name: v for name, (v, _) in found.items()},
        run_ids={name: run for name, (_, run) in found.items()},
        loaded_at=datetime.now(UTC).replace(tzinfo=None),
        clv=loaded[CLV_NAME],
        churn=loaded[CHURN_NAME],
        offers_full=offers.full,
        offers_context=offers.context,
        churn_columns=churn_columns,
    )
    warm_up(models)
    return models


def warm_up(models: ServedModels) -> None:
    """One prediction through each model, and the offer models compiled for bookings: a broken
    artifact fails here, not on a guest's request."""
    models.offers_full.compiled()
    models.offers_context.compiled()
    example = pd.DataFrame({"frequency": [2.0], "recency": [30.0], "T": [60.0], "monetary_value": [100.0]})
    models.clv.predict(example)
    row = pd.DataFrame([{c: 0.0 for c in models.churn_columns}]) if models.churn_columns else example
    models.churn.predict(row)


class ModelHolder:
    """The current champions, replaced as a whole when an alias moves."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self.current: ServedModels | None = None
        self.last_error: str | None = None

    def load(self) -> ServedModels:
        self.current = load_models(self.client)
        return self.current

    def reload_if_moved(self) -> bool:
        """Load the champions again if any alias points elsewhere; True when the served set changed."""
        try:
            found = champion_versions(self.client)
            if self.current is not None and all(
                self.current.versions.get(name) == version for name, (version, _) in found.items()
            ):
                return False
            self.current = load_models(self.client)
            self.last_error = None
            return True
        except Exception as exc:  # keep serving the loaded models
            self.last_error = type(exc).__name__
            log.error("model reload failed (%s); the loaded models keep serving", type(exc).__name__)
            return False
