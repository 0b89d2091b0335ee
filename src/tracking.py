"""MLflow set-up from Settings (the tracking store, the artifact folder, experiments, the UI's command)
and what a run records about its data without its rows (a feature fingerprint).

Shared by every layer that logs runs (profiles, models), like ``settings``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from crm_analytics.errors import RefusedError
from crm_analytics.settings import Settings


def tracking_uri(settings: Settings) -> str:
    """The configured tracking URI, a local SQLite store's path made absolute (its folder created) so the
    store does not move with the working folder (MLflow caches stores by URI)."""
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///")).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{path}"
    return uri


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store and return a client. MLflow's download progress bars stay
    off unless asked for (`MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`): our commands draw their own."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


# the UI does not run MLflow's GenAI job runner: one process less, and no temporary folder it leaves behind
UI_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def ui_command(settings: Settings, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """``mlflow server`` (the UI) on the jobs' own store: the tracking and registry URI of ``configure``,
    new experiments' artifacts under ``mlflow_artifact_root`` as in ``use_experiment``, one worker; run
    it with ``UI_ENVIRONMENT``. Every location is absolute, so it writes nothing where it is started
    (MLflow's own defaults are ``./mlflow.db`` and ``./mlartifacts``). A tracking server is not ours."""
    if settings.mlflow_tracking_uri.startswith(("http://", "https://")):
        raise RefusedError(
            "CRM_MLFLOW_TRACKING_URI names a tracking server: open its address in a browser instead"
        )
    uri = tracking_uri(settings)
    artifacts = settings.mlflow_artifact_root.resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", uri, "--registry-store-uri", uri,
        "--default-artifact-root", artifacts.as_uri(), "--artifacts-destination", artifacts.as_uri(),
        "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip


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
