"""The scores of a ``crm score`` run in the warehouse too (``customer_scores``), for analysts' SQL.

One row per customer and cutoff: P(alive), expected purchases and spend, CLV with its 90% interval, churn
probability, and the model versions that made them. Chunks are staged as they are scored (memory stays
bounded) and the cutoff's rows are replaced in one transaction once the serving snapshot has switched,
so both hold the same run; a failed run leaves the table as it was (and should that last transaction
fail, the table keeps the previous run while the store has the new one).
"""

from __future__ import annotations

import json
import uuid
from datetime import date

import pandas as pd

from crm_analytics.ingest.warehouse import Warehouse, create_table_sql
from crm_analytics.serving.store import now

TABLE = "customer_scores"
SCORE_COLUMNS = (
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "clv_low",
    "clv_high",
    "churn_probability",
)
COLUMNS = {
    "customer_id": "TEXT",
    "as_of": "DATE",
    **dict.fromkeys(SCORE_COLUMNS, "DOUBLE PRECISION"),
    "models": "TEXT",
    "scored_at": "TIMESTAMP",
}


class ScoreTable:
    """Stages a run's scores chunk by chunk, then replaces the cutoff's rows at once."""

    def __init__(self, warehouse: Warehouse, as_of: date, models: dict[str, str]) -> None:
        self.warehouse = warehouse
        self.as_of = as_of
        self.models = json.dumps(models, sort_keys=True)
        self.scored_at = now()
        self.stage = f"_stage_scores_{uuid.uuid4().hex}"
        with warehouse.transaction() as execute:
            execute(create_table_sql(TABLE, COLUMNS, ("customer_id", "as_of")))
            execute(create_table_sql(self.stage, COLUMNS))

    def add(self, scores: pd.DataFrame) -> None:
        """Stage a chunk's scores (indexed by customer id)."""
        frame = scores.reindex(columns=list(SCORE_COLUMNS)).astype(float)
        frame = frame.rename_axis("customer_id").reset_index()
        frame = frame.assign(as_of=self.as_of, models=self.models, scored_at=self.scored_at)
        self.warehouse.load_frame(self.stage, frame[list(COLUMNS)])

    def commit(self) -> None:
        """Replace the cutoff's scores with the staged ones, in one transaction."""
        columns = ", ".join(f'"{c}"' for c in COLUMNS)
        try:
            with self.warehouse.transaction() as execute:
                execute(f'DELETE FROM "{TABLE}" WHERE as_of = ?', [self.as_of])
                execute(f'INSERT INTO "{TABLE}" ({columns}) SELECT {columns} FROM "{self.stage}"')
        finally:
            self.discard()

    def discard(self) -> None:
        self.warehouse.drop_table(self.stage)
