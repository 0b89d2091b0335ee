"""The code location: the assets, the ``daily_refresh`` job over them, its daily schedule and the
sensor on the incoming folder; the ``retrain`` job, checked every night after the refresh."""

import hashlib
import json

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    in_process_executor,
    sensor,
)

from crm_analytics.jobs.refresh import incoming_files
from crm_analytics.orchestration.assets import ASSETS, CrmResource, retraining

# one process per run, stages in order: a DuckDB warehouse file takes one writer at a time
daily_refresh = define_asset_job(
    "daily_refresh",
    selection=AssetSelection.assets(*ASSETS),
    executor_def=in_process_executor,
    description="One day's work (as `crm refresh`): ingest, profiles, features, segments, scores, monitor, "
    "feedback.",
)

daily_schedule = ScheduleDefinition(
    name="daily_refresh_schedule",
    job=daily_refresh,
    cron_schedule="0 3 * * *",  # 03:00 UTC, after the source systems' nightly exports
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="The daily refresh every night at 03:00 UTC.",
)


retraining_job = define_asset_job(
    "retrain",  # not the asset's name: an op and a job may not share one
    selection=AssetSelection.assets(retraining),
    executor_def=in_process_executor,
    description="Churn and CLV retrained when due (weekly, or on a breach) through the gate.",
)

retraining_schedule = ScheduleDefinition(
    name="retraining_schedule",
    job=retraining_job,
    cron_schedule="0 5 * * *",  # after the 03:00 refresh; `crm retrain` itself decides whether it is due
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every night at 05:00 UTC: retrain when due (weekly in data days, or on a breach).",
)


def folder_state(crm: CrmResource) -> str:
    """A digest of the incoming folder's file names, sizes and modification times: the sensor's cursor."""
    settings = crm.settings()
    listing = []
    for path in incoming_files(settings):
        stat = path.stat()
        listing.append([path.name, stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


@sensor(
    job=daily_refresh,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="A refresh when a file in the incoming folder appears, changes or goes away.",
)
def incoming_files_sensor(context: SensorEvaluationContext, crm: CrmResource) -> RunRequest | SkipReason:
    """A run request when the incoming folder differs from the last evaluation (the cursor)."""
    state = folder_state(crm)
    if state == context.cursor:
        return SkipReason("the incoming folder has not changed")
    first = context.cursor is None
    context.update_cursor(state)
    if first and not incoming_files(crm.settings()):
        return SkipReason("the incoming folder is empty")
    return RunRequest(run_key=state, tags={"crm/trigger": "incoming"})


defs = Definitions(
    assets=[*ASSETS, retraining],
    jobs=[daily_refresh, retraining_job],
    schedules=[daily_schedule, retraining_schedule],
    sensors=[incoming_files_sensor],
    resources={"crm": CrmResource()},
)
