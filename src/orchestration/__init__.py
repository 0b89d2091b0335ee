"""Dagster code location for the daily refresh (``dagster dev -m crm_analytics.orchestration``, ``make
orchestrate``): one asset per stage of ``jobs.refresh``, a daily schedule and a sensor on the incoming
folder. The assets call the jobs; no stage logic lives here."""

from crm_analytics.orchestration.definitions import defs

__all__ = ["defs"]
