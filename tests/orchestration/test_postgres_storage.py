"""The production `dagster.yaml` of docs/scaling.md, pointed at a fresh database on the local PostgreSQL:
the instance loads with PostgreSQL run, event and schedule storage and records a run there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, asset, materialize
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.postgres
DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


@asset
def probe() -> int:
    return 1


def test_documented_postgres_instance_stores_runs(
    postgres_url: str, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = re.search(r"```yaml\n(storage:.*?)```", DOC.read_text(), re.S)
    assert block, "docs/scaling.md has no dagster.yaml example"
    config = yaml.safe_load(block.group(1))
    url = make_url(postgres_url)
    db = config["storage"]["postgres"]["postgres_db"]
    db.update(hostname=url.host, username=url.username, db_name=url.database, port=url.port)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")  # trust auth on the test server
    (isolated / "dagster.yaml").write_text(yaml.safe_dump(config))
    with DagsterInstance.from_config(str(isolated)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert materialize([probe], instance=instance).success
        assert len(instance.get_runs()) == 1
        assert instance.run_coordinator is not None
