"""The ``crm`` command: thin typer functions over the jobs, one module per command group.

Progress bars and tables go to stderr; with ``--json`` stdout carries only the JSON result, so scripts
can read it. ``main`` is the console script: a usage error is one line on stderr (exit 2), never a
usage box or a traceback; see ``common`` for the exit codes.
"""

from __future__ import annotations

import os
import sys

import typer
from typer._click import exceptions as click_errors  # typer >= 0.29 vendors click

from crm_analytics.cli import data, features, ingest, models, operate, profiles, run, segments, serving

app = typer.Typer(help="crm-analytics: customer analytics from purchase history.", no_args_is_help=True)
app.add_typer(data.app, name="data")
app.command("ingest")(ingest.ingest)
app.add_typer(ingest.warehouse_app, name="warehouse")
app.add_typer(profiles.app, name="profiles")
app.add_typer(features.app, name="features")
app.command("train")(models.train)
app.command("evaluate")(models.evaluate)
app.command("promote")(models.promote)
app.command("retrain")(models.retrain)
app.command("mlflow")(models.mlflow_ui)
app.add_typer(models.models_app, name="models")
app.add_typer(segments.app, name="segments")
app.command("score")(serving.score_command)
app.command("serve")(serving.serve_command)
app.add_typer(serving.keys_app, name="keys")
app.add_typer(serving.feedback_app, name="feedback")
app.command("erase")(profiles.erase)
app.command("run")(run.run)
app.command("refresh")(operate.refresh)
app.command("status")(operate.status)
app.command("monitor")(operate.monitor)
app.command("config")(run.show_config)


def main() -> None:
    """The ``crm`` console script. Its umask is 077: every file it writes (databases and their WAL
    files, exports, models, logs) is the owner's alone, as they hold personal data or secrets."""
    os.umask(0o077)
    try:
        code = app(standalone_mode=False, prog_name="crm")
    except click_errors.NoArgsIsHelpError as exc:
        print(exc.format_message())
        sys.exit(0)
    except click_errors.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "crm"
        print(f"{command}: {exc.format_message()}", file=sys.stderr)
        sys.exit(2)
    except click_errors.ClickException as exc:
        print(f"crm: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
