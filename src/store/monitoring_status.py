"""The latest monitoring figures in the serving store (``monitoring_gauges``): written by the refresh's
``monitor`` stage, read by ``/metrics`` (the API never reads the warehouse). One row per gauge and label
set, replaced whole by each monitored day; counts and model metrics only."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, insert, select

from crm_analytics.store.records import now
from crm_analytics.store.tables import monitoring_gauges


@dataclass(frozen=True)
class Gauge:
    """One figure: a gauge's name, its labels and value."""

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


class MonitoringStatus:
    """Replace and read the monitored day's gauges over the serving store's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(self, as_of: str, gauges: Sequence[Gauge]) -> None:
        """The day's gauges in place of the previous day's, in one transaction."""
        rows = [
            {
                "name": g.name,
                "labels": json.dumps(g.labels, sort_keys=True),
                "value": float(g.value),
                "as_of": as_of,
                "updated_at": now(),
            }
            for g in gauges
            if math.isfinite(g.value)  # an undefined figure is absent, not NaN (SQLite stores NULL)
        ]
        with self.engine.begin() as conn:
            conn.execute(delete(monitoring_gauges))
            if rows:
                conn.execute(insert(monitoring_gauges), rows)

    def read(self) -> list[Gauge]:
        """Every stored gauge, by name and labels."""
        query = select(monitoring_gauges.c.name, monitoring_gauges.c.labels, monitoring_gauges.c.value)
        with self.engine.connect() as conn:
            found = conn.execute(query.order_by(monitoring_gauges.c.name, monitoring_gauges.c.labels)).all()
        return [Gauge(name, float(value), json.loads(labels)) for name, labels, value in found]
