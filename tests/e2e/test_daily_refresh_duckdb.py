"""Thirty days of `crm refresh` on a DuckDB warehouse (see ``daily_refresh``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.daily_refresh import project_settings, thirty_days_of_refreshes


def test_thirty_days_of_refreshes_on_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    thirty_days_of_refreshes(project_settings(monkeypatch, tmp_path, None))
