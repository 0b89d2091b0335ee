"""The scores of a ``crm score`` run in the warehouse too (``customer_scores``), for analysts' SQL.

One row per customer and cutoff: P(alive), expected purchases and spend, CLV with its 90% interval, churn
probability, and the model versions that made them. Chunks are staged as they are scored (memory stays
bounded) and the cutoff's rows are replaced in one transaction once the serving snapshot has switched,
so both hold the same run; a failed run leaves the table as it was (and should that last transaction
fail, the table keeps the previous run while the store has the new one). A killed run's staging table
is dropped when the next run starts (``warehouse.staging``).
"""

from __future__ import annotations

import json
import uuid
from datetime import date

import pandas as pd

from crm_analytics.store import now
from crm_analytics.warehouse import Warehouse, create_table_sql, migrations
from crm_analytics.warehouse.staging import STAGE_PREFIX, drop_staging_tables

TABLE = "customer_scores"
KEY_COLUMNS = {"customer_id": "TEXT", "as_of": "DATE"}
RUN_COLUMNS = {"models": "TEXT", "scored_at": "TIMESTAMP"}


class ScoreTable:
    """Stages a run's scores chunk by chunk, then replaces the cutoff's rows at once.

    One column per output of a scored family (``outputs``: name -> Spark SQL type, all numeric); a
    family's columns are added to the table on its first run, as a new feature's are to ``features``.
    """

    def __init__(
        self, warehouse: Warehouse, as_of: date, models: dict[str, str], outputs: dict[str, str]
    ) -> None:
        self.warehouse = warehouse
        self.as_of = as_of
        self.models = json.dumps(models, sort_keys=True)
        self.scored_at = now()
        self.outputs = list(outputs)
        self.columns = KEY_COLUMNS | dict.fromkeys(self.outputs, "DOUBLE PRECISION") | RUN_COLUMNS
        self.stage = f"{STAGE_PREFIX}scores_{uuid.uuid4().hex}"
        migrations.upgrade(warehouse)
        drop_staging_tables(warehouse)  # a killed run's leftovers hold scores of customers
        with warehouse.transaction() as execute:
            for name in self.outputs:
                execute(f'ALTER TABLE "{TABLE}" ADD COLUMN IF NOT EXISTS "{name}" DOUBLE PRECISION')
            execute(create_table_sql(self.stage, self.columns))

    def add(self, scores: pd.DataFrame) -> None:
        """Stage a chunk's scores (indexed by customer id)."""
        frame = scores.reindex(columns=self.outputs).astype(float)
        frame = frame.rename_axis("customer_id").reset_index()
        frame = frame.assign(as_of=self.as_of, models=self.models, scored_at=self.scored_at)
        self.warehouse.load_frame(self.stage, frame[list(self.columns)])

    def commit(self) -> None:
        """Replace the cutoff's scores with the staged ones, in one transaction."""
        columns = ", ".join(f'"{c}"' for c in self.columns)
        try:
            with self.warehouse.transaction() as execute:
                execute(f'DELETE FROM "{TABLE}" WHERE as_of = ?', [self.as_of])
                execute(f'INSERT INTO "{TABLE}" ({columns}) SELECT {columns} FROM "{self.stage}"')
        finally:
            self.discard()

    def discard(self) -> None:
        self.warehouse.drop_table(self.stage)
