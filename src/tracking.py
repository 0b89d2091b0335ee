"""MLflow set-up from Settings (the tracking store, the artifact folder, experiments) and what a run
records about its data without its rows (a feature fingerprint).

Shared by every layer that logs runs (profiles, models), like ``settings``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from crm_analytics.settings import Settings


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store (creating a local SQLite store's folder) and return a client."""
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        # absolute, so the store does not move with the working folder (MLflow caches stores by URI)
        path = Path(uri.removeprefix("sqlite:///")).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{path}"
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def use_experiment(settings: Settings, name: str) -> str:
    """Create the experiment if needed and make it current. With a local store its artifacts go under
    ``mlflow_artifact_root``; with a tracking server (``http(s)://``) the server decides where they go
    (``mlflow server --artifacts-destination``), so every client of a shared server can read them."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None and settings.mlflow_tracking_uri.startswith(("http://", "https://")):
        mlflow.create_experiment(name)
    elif experiment is None:
        root = settings.mlflow_artifact_root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        mlflow.create_experiment(name, artifact_location=(root / name).as_uri())
    # by name, always: a just-created experiment must become current too, or runs go to the old one
    return str(mlflow.set_experiment(name).experiment_id)


def feature_fingerprint(features: pd.DataFrame) -> dict[str, str]:
    """The feature table's schema and a content hash: enough to know what a model saw, without its rows."""
    schema = {str(c): str(t) for c, t in features.dtypes.items()}
    content = pd.util.hash_pandas_object(features.reset_index(drop=True), index=False).to_numpy().tobytes()
    return {"schema": json.dumps(schema), "content_sha256": hashlib.sha256(content).hexdigest()}
