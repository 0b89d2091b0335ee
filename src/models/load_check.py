"""Before a champion is replaced, its candidate is loaded in a fresh Python process, as the API will.

A version can be registered and still fail to load where it is served: its artifacts gone, a class
defined only in the notebook that trained it. Promotion (forced or not) over an existing champion
runs ``python -m crm_analytics.models.load_check NAME VERSION`` against the same registry, which
loads the version with MLflow and prints its output schema's column names; the promotion is refused
when the process fails or the columns differ from the champion's. It costs a process start (~4-5 s:
importing MLflow and the model's code), paid by ``crm promote`` and notebooks, not by the first
champions of ``crm run`` (trained in the same process, their input example already checked by MLflow
when logged) nor by segment definitions (no gate).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import mlflow


def output_columns(name: str, version: str) -> list[str] | None:
    """The registered version's output column names (its signature), loading the whole model."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}", suppress_warnings=True)
    schema = model.metadata.get_output_schema()
    return None if schema is None else [str(column) for column in schema.input_names()]


def check_in_fresh_process(name: str, version: str, timeout: float = 300.0) -> list[str] | None:
    """``output_columns`` of the version, computed in a new Python process on this process's registry;
    a RuntimeError naming what failed (the exception's type only: its text may quote paths)."""
    env = os.environ | {
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "MLFLOW_REGISTRY_URI": mlflow.get_registry_uri(),
    }
    command = [sys.executable, "-m", "crm_analytics.models.load_check", name, str(version)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} v{version} does not load in a fresh process ({_error_type(done.stderr)})")
    try:
        found: list[str] | None = json.loads(done.stdout.strip().splitlines()[-1])["outputs"]
    except (IndexError, KeyError, ValueError):
        raise RuntimeError(f"{name} v{version}: the load check printed no output columns") from None
    return found


def _error_type(stderr: str) -> str:
    """The exception type a traceback ends with (never its message, which may quote paths)."""
    for line in reversed(stderr.splitlines()):
        found = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))\b", line)
        if found:
            return found.group(1)
    return "no error named"


def main() -> None:
    name, version = sys.argv[1], sys.argv[2]
    print(json.dumps({"outputs": output_columns(name, version)}))


if __name__ == "__main__":
    main()
