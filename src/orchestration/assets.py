"""The daily refresh's stages as Dagster assets, each calling ``jobs.refresh`` (nothing duplicated).

``raw_tables`` ingests what is new, resolves the day once and records the run in the refresh history
(``start_run``); every later asset receives that day from its upstream (a ``StagedRun``, through
Dagster's IO manager) and runs its stage with ``run_stage``; ``feedback``, the last, records how the run
ended (``finish_run``), so ``crm status`` lists Dagster runs beside ``crm refresh`` ones. When the day,
data and champions equal the last successful refresh's, the stages between are left as they are (the
same day twice changes nothing), as ``crm refresh`` does.
"""

import json
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from dagster import (
    AssetExecutionContext,
    Backoff,
    Config,
    ConfigurableResource,
    Failure,
    HookContext,
    Jitter,
    MetadataValue,
    Output,
    RetryPolicy,
    asset,
    failure_hook,
)
from pydantic import Field

from crm_analytics.errors import InvalidInputError, NotReadyError, RefusedError
from crm_analytics.jobs.refresh import StagedRun, fail_run, finish_run, run_stage, start_run
from crm_analytics.jobs.retrain import retrain
from crm_analytics.settings import Settings, load_settings

T = TypeVar("T")
GROUP = "daily_refresh"
# transient failures (the warehouse held by another process, a dropped connection) are retried after
# about 30 s, 60 s and 120 s; an error that a retry cannot fix (bad input, a refused batch, nothing to
# work on yet, a model without a champion) fails the step at once
RETRY = RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
FINAL = (InvalidInputError, NotReadyError, RefusedError, LookupError)
STAGE_OF = {"raw_tables": "ingest"}  # asset -> stage where the names differ


class CrmResource(ConfigurableResource):
    """The project's settings, as every ``crm`` command reads them (``CRM_*`` variables, ``.env``)."""

    def settings(self) -> Settings:
        return load_settings()


class DayConfig(Config):
    """Run configuration of ``raw_tables`` (launchpad: ``ops: raw_tables: config: as_of: ...``)."""

    as_of: str | None = Field(
        default=None, description="Day to serve (YYYY-MM-DD); default: the data's last day after the ingest."
    )


def history_id(dagster_run_id: str) -> str:
    """The refresh history's id of a Dagster run (32 hex digits, as ``crm refresh`` writes them)."""
    return dagster_run_id.replace("-", "")


@failure_hook(required_resource_keys={"crm"})
def record_failure(context: HookContext) -> None:
    """A stage failed for good (its retries spent): the run recorded ``failed`` in the history."""
    exc = context.op_exception
    if isinstance(exc, Failure) and exc.__cause__ is not None:
        exc = exc.__cause__
    stage = STAGE_OF.get(context.op.name, context.op.name)
    fail_run(context.resources.crm.settings(), history_id(context.run_id), stage, exc or RuntimeError())


def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn`` run; a typed error no retry can fix becomes a final ``Failure`` with its one-line message."""
    try:
        return fn(*args, **kwargs)
    except FINAL as exc:
        raise Failure(description=str(exc).splitlines()[0], allow_retries=False) from exc


def _progress(context: AssetExecutionContext) -> Callable[..., None]:
    def progress(stage: str, done: float | None = None, total: float | None = None) -> None:
        if done is None:  # the step's name only: counts would flood the run's log
            context.log.info(stage)

    return progress


def metadata(as_of: date, report: dict[str, Any]) -> dict[str, Any]:
    """A materialization's metadata: the day, the report's counts and versions, the whole report."""
    flat: dict[str, Any] = {"as_of": str(as_of)}
    for key, value in report.items():
        if isinstance(value, bool | int | float | str):
            flat[key] = value
        elif isinstance(value, dict) and all(isinstance(v, str | int | float) for v in value.values()):
            flat |= {f"{key}/{k}": v for k, v in value.items()}  # e.g. models/crm-clv: "3"
    return flat | {"report": MetadataValue.json(json.loads(json.dumps(report, default=str)))}


def _stage(context: AssetExecutionContext, crm: CrmResource, asset_name: str, run: StagedRun) -> StagedRun:
    """Run one stage for the upstream's day; a run whose data did not change leaves it as it is."""
    stage = STAGE_OF.get(asset_name, asset_name)
    if run.unchanged and run.run_id == history_id(context.run.run_id):
        context.add_output_metadata({"as_of": str(run.as_of), "unchanged": True})
        return run
    report = _call(run_stage, crm.settings(), stage, run.as_of, _progress(context))
    context.add_output_metadata(metadata(run.as_of, report))
    return run.with_report(stage, report)


@asset(group_name=GROUP, retry_policy=RETRY, hooks={record_failure})
def raw_tables(context: AssetExecutionContext, config: DayConfig, crm: CrmResource) -> Output[StagedRun]:
    """What is new in the incoming folder ingested (each file once, by content); the day resolved."""
    try:
        day = date.fromisoformat(config.as_of) if config.as_of else None
    except ValueError:
        raise Failure(description="as_of: expected a day as YYYY-MM-DD", allow_retries=False) from None
    run = _call(start_run, crm.settings(), history_id(context.run.run_id), day, _progress(context))
    breaches = len(run.reports["ingest"].get("quality", {}).get("breaches", []))  # `crm monitor` says which
    marks = {"unchanged": run.unchanged, "data_quality_breaches": breaches}
    return Output(run, metadata=metadata(run.as_of, run.reports["ingest"]) | marks)


@asset(group_name=GROUP, retry_policy=RETRY, hooks={record_failure})
def profiles(context: AssetExecutionContext, crm: CrmResource, raw_tables: StagedRun) -> StagedRun:
    """Customers re-linked when customer records arrived since the last profile build."""
    return _stage(context, crm, "profiles", raw_tables)


@asset(group_name=GROUP, retry_policy=RETRY, hooks={record_failure})
def features(context: AssetExecutionContext, crm: CrmResource, profiles: StagedRun) -> StagedRun:
    """Purchase-history features as of the day."""
    return _stage(context, crm, "features", profiles)


@asset(group_name=GROUP, retry_policy=RETRY, hooks={record_failure})
def segments(context: AssetExecutionContext, crm: CrmResource, features: StagedRun) -> StagedRun:
    """Everyone assigned to the champion segment definitions (fitted and registered the first time)."""
    return _stage(context, crm, "segments", features)


@asset(group_name=GROUP, retry_policy=RETRY, hooks={record_failure})
def scores(context: AssetExecutionContext, crm: CrmResource, segments: StagedRun) -> StagedRun:
    """Every customer scored by the champions into one new serving snapshot (an atomic switch)."""
    return _stage(context, crm, "scores", segments)


@asset(group_name=GROUP, retry_policy=RETRY, hooks={record_failure})
def monitor(context: AssetExecutionContext, crm: CrmResource, scores: StagedRun) -> StagedRun:
    """Drift and realized performance of the day, its report logged to MLflow; the breaches counted."""
    run = _stage(context, crm, "monitor", scores)
    if "monitor" in run.reports:
        context.add_output_metadata({"breaches": run.reports["monitor"]["breaches"]})
    return run


@asset(group_name=GROUP, retry_policy=RETRY, hooks={record_failure})
def feedback(context: AssetExecutionContext, crm: CrmResource, monitor: StagedRun) -> StagedRun:
    """The API's feedback settled into the offer log, the read copy published, the run's outcome
    recorded in the history."""
    run = monitor
    this_run = run.run_id == history_id(context.run.run_id)
    report = _call(run_stage, crm.settings(), "feedback", run.as_of, _progress(context))
    run = run.with_report("feedback", report)
    # the warehouse's read copy for notebooks and the reading commands, as `crm refresh` ends
    run = run.with_report("publish", _call(run_stage, crm.settings(), "publish", run.as_of))
    status = finish_run(crm.settings(), run) if this_run else "not recorded (a partial run)"
    context.add_output_metadata(metadata(run.as_of, report) | {"refresh": status})
    return run


@asset(group_name="retraining")
def retraining(context: AssetExecutionContext, crm: CrmResource) -> None:
    """Churn and CLV retrained when due (``crm retrain``: weekly in data days, or on a realized-
    performance breach of the champion) through the gate; the served day rescored when a champion
    changed. Its own job, after the nightly refresh: a failure here never fails a refresh."""
    report = _call(retrain, crm.settings(), progress=_progress(context))
    promoted = [p["model"] for p in report.promotions if p["promoted"]]
    context.add_output_metadata(
        {"as_of": report.as_of, "due": report.due, "promoted": ", ".join(promoted)}
        | {f"reason/{model}": reason for model, reason in report.reasons.items()}
    )


ASSETS = [raw_tables, profiles, features, segments, scores, monitor, feedback]
