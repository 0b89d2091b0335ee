"""Two weeks of `crm refresh` on a PostgreSQL warehouse (see ``daily_refresh``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.daily_refresh import days_of_refreshes, project_settings


@pytest.mark.postgres
def test_two_weeks_of_refreshes_on_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    days_of_refreshes(project_settings(monkeypatch, tmp_path, postgres_url))
