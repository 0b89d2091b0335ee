"""``/metrics`` gauges of what watches the data and the models, read from the serving store
(``store.monitoring_status``, written by each refresh's monitor stage) and the served snapshot's age.

The same in every worker (the store is shared), so under ``crm serve`` any worker's answer is the
whole service's. A store that cannot be read yields no gauges rather than failing the scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from crm_analytics.store import ServingStore
from crm_analytics.store.monitoring_status import MonitoringStatus

log = logging.getLogger("crm_analytics.serving")
HELP = {
    "crm_monitor_day": "The day the latest monitoring figures are of (Unix time of its start)",
    "crm_monitor_breaches": "Checks in breach on the latest monitored day, by kind",
    "crm_drift_max_distance": "Largest drift distance (KS D or total variation) on the latest day, by view",
    "crm_data_quality_checks": "Data-quality checks on the latest refreshed day",
    "crm_realized": "Realized performance of each model's latest matured scored day, by metric",
    "crm_realized_expected": "What the realized figure was expected to be (training AUC, served churn rate)",
}


class MonitoringCollector(Collector):
    """Yields the stored gauges and ``crm_snapshot_age_days`` at every scrape."""

    def __init__(
        self, store: Callable[[], ServingStore | None], today: Callable[[], date] | None = None
    ) -> None:
        self.store = store
        self.today = today or (lambda: datetime.now(UTC).date())

    def collect(self) -> Iterator[Metric]:
        store = self.store()
        if store is None:
            return
        try:
            gauges = MonitoringStatus(store.engine).read()
            active = store.active()
        except SQLAlchemyError:  # a store not migrated yet, or busy: the request metrics still answer
            log.warning("monitoring gauges: the serving store could not be read")
            return
        if active is not None:
            age = GaugeMetricFamily(
                "crm_snapshot_age_days", "Days between the served snapshot's as_of and today"
            )
            age.add_metric([], float((self.today() - date.fromisoformat(active.as_of)).days))
            yield age
        families: dict[str, GaugeMetricFamily] = {}
        for gauge in gauges:
            names = sorted(gauge.labels)
            family = families.get(gauge.name)
            if family is None:
                help_text = HELP.get(gauge.name, gauge.name)
                family = families[gauge.name] = GaugeMetricFamily(gauge.name, help_text, labels=names)
            family.add_metric([gauge.labels[n] for n in names], gauge.value)
        yield from families.values()
