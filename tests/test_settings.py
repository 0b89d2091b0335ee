"""Settings: defaults, CRM_* overrides, and start-up errors that name the setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crm_analytics.settings import SettingsError, load_settings, mask_url, settings_markdown


def test_defaults() -> None:
    settings = load_settings()
    assert settings.warehouse_url == "duckdb:///data/warehouse.duckdb"
    assert settings.mlflow_tracking_uri == "sqlite:///mlruns/mlflow.db"
    assert settings.mlflow_artifact_root == Path("mlruns/artifacts")
    assert settings.serving_store_url.startswith("sqlite:///data/")


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_WAREHOUSE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("CRM_INGEST_MAX_BAD_RATIO", "0.2")
    settings = load_settings()
    assert settings.warehouse_url.startswith("postgresql://")
    assert settings.ingest_max_bad_ratio == 0.2


def test_dotenv_file_is_read(isolated: Path) -> None:
    (isolated / ".env").write_text("CRM_DATA_DIR=elsewhere\n")
    assert load_settings().data_dir == Path("elsewhere")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CRM_WAREHOUSE_URL", "mysql://db/x", "CRM_WAREHOUSE_URL: .*scheme must be one of duckdb"),
        ("CRM_INGEST_MAX_BAD_RATIO", "1.5", "CRM_INGEST_MAX_BAD_RATIO: .*less than or equal to 1"),
        ("CRM_INGEST_CHUNK_ROWS", "many", "CRM_INGEST_CHUNK_ROWS: .*valid integer"),
        ("CRM_SERVING_STORE_URL", "not a url", "CRM_SERVING_STORE_URL: .*not a SQLAlchemy URL"),
        ("CRM_MLFLOW_TRACKING_URI", "ftp://x", "CRM_MLFLOW_TRACKING_URI: .*scheme must be one of"),
    ],
)
def test_bad_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()


def test_docs_settings_is_generated_from_the_code() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
    assert docs.read_text() == settings_markdown(), "run: crm config --docs-out docs/settings.md"


def test_config_docs_out_writes_the_settings_reference(tmp_path: Path) -> None:
    from crm_analytics.cli.run import show_config

    out = tmp_path / "settings.md"
    show_config(docs_out=out)
    assert out.read_text() == settings_markdown()


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://crm:s3cret@db:5432/crm", "postgresql://crm:***@db:5432/crm"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("http://user:s3c@ret@mlflow:5000", "http://user:***@mlflow:5000"),
        ("postgresql://db/crm?user=crm&password=s3cret", "postgresql://db/crm?user=crm&password=***"),
        ("duckdb:///:memory:", "duckdb:///:memory:"),
        ("sqlite:///data/serving.db", "sqlite:///data/serving.db"),
    ],
)
def test_mask_url_hides_passwords_only(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_config_json_masks_database_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from crm_analytics.cli import app as cli

    monkeypatch.setenv("CRM_WAREHOUSE_URL", "postgresql://crm:s3cret@db:5432/crm")
    monkeypatch.setenv("CRM_SERVING_STORE_URL", "postgresql://crm:s3cret@db:5432/serving")
    monkeypatch.setenv("CRM_MLFLOW_TRACKING_URI", "postgresql://crm:s3cret@db:5432/mlflow")
    monkeypatch.setenv("CRM_SERVING_REDIS_URL", "redis://:s3cret@cache:6379/0")
    monkeypatch.setenv("CRM_ERASURE_KEY", "s3cret-key")

    for arguments in (["config", "--json"], ["config"]):
        result = CliRunner().invoke(cli, arguments)
        assert result.exit_code == 0, result.output
        assert "s3cret" not in result.output
    values = json.loads(CliRunner().invoke(cli, ["config", "--json"]).stdout)
    assert values["warehouse_url"] == "postgresql://crm:***@db:5432/crm"
