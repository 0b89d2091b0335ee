"""A serving store from before release 0.1.0 is adopted by the migrations: stored feedback is kept."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from crm_analytics.store import ServingStore

OLD_FEEDBACK = """CREATE TABLE serving_feedback (
    event_id VARCHAR(128) PRIMARY KEY, event VARCHAR(16) NOT NULL, offer_id VARCHAR(128) NOT NULL,
    customer_id VARCHAR(128), occurred_at DATETIME NOT NULL, context TEXT, received_at DATETIME NOT NULL,
    key_id VARCHAR(64) NOT NULL)"""


def test_an_older_feedback_table_gains_its_new_columns_and_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(OLD_FEEDBACK))
        conn.execute(
            sa.text(
                "INSERT INTO serving_feedback VALUES "
                "('e1', 'shown', 'O01', 'U1', '2026-03-01 10:00:00', NULL, '2026-03-01 10:00:01', 'k_1')"
            )
        )
    for _ in range(2):  # a second start (another worker) finds the work done
        ServingStore(url).upgrade()
    inspector = sa.inspect(engine)
    columns = {c["name"] for c in inspector.get_columns("serving_feedback")}
    assert "decision_id" in columns
    assert "propensity" not in columns  # 0003: the caller's propensity is not kept
    assert "serving_feedback_shown" in {i["name"] for i in inspector.get_indexes("serving_feedback")}
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT event_id, decision_id FROM serving_feedback")).all()
    assert [tuple(r) for r in kept] == [("e1", None)]
