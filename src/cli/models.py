"""``crm train``, ``crm promote`` and ``crm evaluate``: model families trained, gated and judged;
``crm mlflow`` to browse them."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crm_analytics.cli.common import (
    JsonOption,
    day_option,
    emit,
    err,
    handle_errors,
    out,
    progress_bar,
    render_rows,
    settings,
)
from crm_analytics.cli.render import render_evaluation

if TYPE_CHECKING:
    from crm_analytics.jobs.train import PromoteReport


@handle_errors
def train(
    model: Annotated[str, typer.Argument(help="clv, churn, offers or bgbb (or the registered name).")],
    as_of: Annotated[
        date,
        day_option(
            "Cutoff of a stored feature build with labels; offers: the split; bgbb: the last occasion's end."
        ),
    ],
    until: Annotated[
        date | None,
        day_option(
            "offers: last day of the offer log to judge the policy on; bgbb: of the holdout occasions."
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="offers: the demo data's truth folder, for exact values and the oracle."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same data and seed give the same metrics.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Train a model, log it to MLflow and register it (crm-clv, crm-churn, crm-offers, crm-bgbb)."""
    from crm_analytics.jobs import train as train_job

    with err.status(f"training {model} as of {as_of}"):
        result = train_job.train(settings(), model, as_of, seed=seed, until=until, truth=truth)
    emit(result, as_json, lambda r: render_rows(f"trained {r.model} v{r.version}", [r.metrics]))


@handle_errors
def retrain(
    as_of: Annotated[date | None, day_option("The day to retrain for (default: the served day).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Retrain even when not due.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Retrain churn and CLV when due (every CRM_RETRAIN_EVERY_DAYS of newer mature labels, or on a
    realized-performance breach of the champion), weigh each candidate against its champion through the
    gate, and rescore the served day when a champion changed. Exits 0 whether or not it was due."""
    from crm_analytics.jobs.retrain import retrain as retrain_job

    with progress_bar() as progress:
        report = retrain_job(settings(), as_of, force=force, progress=progress)
    emit(report, as_json, render_retrain)


def render_retrain(report: Any) -> None:
    for model, reason in report.reasons.items():
        out.print(f"as of {report.as_of}: {model}: {reason}")
    for outcome in report.promotions:
        verdict = f"promoted v{outcome['version']}" if outcome["promoted"] else "champion kept"
        out.print(f"  {outcome['model']}: {verdict}: {outcome['reason']}")
    if report.rescored:
        out.print("  the served day was rescored with the new champions")


@handle_errors
def promote(
    model: Annotated[str, typer.Argument(help="clv, churn, offers or bgbb (or the registered name).")],
    version: Annotated[str | None, typer.Option(help="Version to promote; default the newest.")] = None,
    force: Annotated[bool, typer.Option(help="Promote even if it does not win the gate.")] = False,
    reason: Annotated[str, typer.Option(help="Why, for a forced promotion (logged).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Move the @champion alias to a candidate that beats the champion on the comparison window (churn,
    CLV: by the minimum gain, with a bootstrap 95% interval above zero and no guard metric worse), then
    score the served day again with it (one atomic switch). Refused: exit 1; with --json the figures
    and ``"promoted": false``."""
    from crm_analytics.jobs import train as train_job
    from crm_analytics.models.gate import PromotionRefusedError
    from crm_analytics.models.registry import family

    try:
        with progress_bar() as progress:
            result = train_job.promote_and_rescore(settings(), model, version, force, reason, progress)
    except PromotionRefusedError as refusal:
        if not as_json:
            raise
        evidence = refusal.evidence.as_dict() if refusal.evidence else None
        refused = {
            "model": family(model).name,
            "promoted": False,
            "reason": str(refusal),
            "evidence": evidence,
        }
        emit(refused, as_json)
        raise typer.Exit(1) from None
    emit(result, as_json, render_promotion)


def render_promotion(report: PromoteReport) -> None:
    p = report.promotion
    out.print(f"{p.model} v{p.version} is champion ({p.reason})")
    if report.rescored is not None:
        out.print(f"rescored: as of {report.rescored.as_of}, snapshot {report.rescored.snapshot_id}")


@handle_errors
def evaluate(
    model: Annotated[str, typer.Argument(help="clv, churn or offers.")],
    dataset: Annotated[
        str,
        typer.Option(
            help="cdnow-sample, cdnow-master, demo (synthetic), warehouse (the configured one) or "
            "donations (clv only: BG/BB, discrete time)."
        ),
    ] = "cdnow-sample",
    calibration_end: Annotated[
        date | None,
        day_option("Last day of the calibration period (default: the dataset's split)."),
    ] = None,
    holdout_end: Annotated[
        date | None,
        day_option("Last day of the holdout period (default: the dataset's split)."),
    ] = None,
    customers: Annotated[int, typer.Option(min=100, help="Guests in the demo dataset.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the demo data and the models.")] = 42,
    plots: Annotated[Path | None, typer.Option(help="Folder to save the evaluation plots (PNG) in.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate on a calibration/holdout split. clv: the purchase models compared and selected by holdout
    error, CLV against the supervised spend model. churn: ours against BG/NBD and recency. offers: the
    offer policy against random and popularity (and the oracle on demo data), on the later offer log."""
    from crm_analytics.jobs import evaluate as evaluate_job

    with err.status("evaluating") as status:
        report = evaluate_job.evaluate(
            settings(),
            model,
            dataset,
            calibration_end,
            holdout_end,
            customers=customers,
            seed=seed,
            plots=plots,
            progress=lambda stage, done=None, total=None: status.update(stage),
        )
    emit(report, as_json, lambda r: render_evaluation(model, r))


models_app = typer.Typer(
    help="The registered models: every version and the gate's decisions.", no_args_is_help=True
)


@models_app.command("history")
@handle_errors
def history(
    model: Annotated[
        str | None, typer.Argument(help="clv, churn, offers, bgbb or a segment family (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every registered version, oldest first: its gate metric, whether it is champion, why it was
    promoted, and the gate's figures on it (promoted or not)."""
    from crm_analytics.jobs.model_history import history as model_history

    records = model_history(settings(), model)
    emit([r.as_dict() for r in records], as_json, lambda rows: render_history(records))


def render_history(records: list[Any]) -> None:
    if not records:
        out.print("no registered versions yet: `crm run`, or `crm train` then `crm promote`")
        return
    rows = [
        {
            "model": r.model,
            "version": r.version,
            "created": r.created,
            "champion": "yes" if r.champion else "",
            "gate metric": "" if r.value is None else f"{r.metric} {r.value:.4f}",
            "gate": "" if r.gate is None else ("passed" if r.gate["passed"] else "refused"),
            "why": r.promotion or (r.gate or {}).get("reason", ""),
        }
        for r in records
    ]
    render_rows("model versions", rows)


@handle_errors
def mlflow_ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5000,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
) -> None:
    """The MLflow UI on the jobs' own tracking store, registry and artifact folder (Ctrl+C stops it)."""
    import os

    from crm_analytics.tracking import UI_ENVIRONMENT, ui_command

    command = ui_command(settings(), host, port)
    os.execve(command[0], command, os.environ | UI_ENVIRONMENT)  # mlflow takes the terminal and signals
