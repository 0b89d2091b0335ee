"""One Settings object for the whole project: defaults, overridden by ``CRM_*`` variables or a ``.env`` file.

Every layer receives a ``Settings`` instance; nothing reads the environment deep inside.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

WAREHOUSE_SCHEMES = ("duckdb", "postgres", "postgresql")
MLFLOW_SCHEMES = ("sqlite", "postgresql", "mysql", "http", "https", "file", "databricks")


_URL_FIELDS = ("_url", "_uri")


def mask_url(url: object) -> object:
    """``url`` with its password (user info, or a ``password=`` query value) shown as ``***``; any other
    value as is. A regular expression rather than a URL parser: parsers re-render the rest (``:memory:``
    becomes ``%3Amemory%3A``), and an unencoded ``@`` in a password must not leak its tail."""
    if not isinstance(url, str) or "://" not in url:
        return url
    masked = re.sub(r"(://[^/?#@:]*:)[^/?#]*@", r"\1***@", url, count=1)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", masked, flags=re.IGNORECASE)


class SettingsError(ValueError):
    """A setting has a bad value; the message names the environment variable."""


class Settings(BaseSettings):
    """Paths, connection URLs and ingest limits, each overridable as ``CRM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CRM_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder for generated data and local databases.")
    incoming_dir: Path | None = Field(
        None,
        description="Folder the daily refresh (crm refresh) ingests new files from, each file once "
        "(by content); unset: <data_dir>/incoming.",
    )
    warehouse_url: str = Field(
        "duckdb:///data/warehouse.duckdb",
        description="Warehouse URL: duckdb:///relative/path, duckdb:////absolute/path, "
        "duckdb:///:memory: or postgresql://user@host:port/db.",
    )
    warehouse_lock_timeout: Annotated[float, Field(ge=0.0)] = Field(
        30.0,
        description="Seconds a command waits for a DuckDB warehouse another process holds before it stops "
        "naming that process (0: stop at once).",
    )
    warehouse_read_copy: Path | None = Field(
        None,
        description="DuckDB only: the read-only copy of the warehouse that `crm run`, the refresh and "
        "`crm warehouse publish` publish and that notebooks and the reading commands open; unset: "
        "<warehouse>.read.duckdb beside the warehouse file.",
    )
    mlflow_tracking_uri: str = Field("sqlite:///mlruns/mlflow.db", description="MLflow tracking store.")
    mlflow_artifact_root: Path = Field(Path("mlruns/artifacts"), description="MLflow artifact folder.")
    serving_store_url: str = Field(
        "sqlite:///data/serving.db", description="SQLAlchemy URL of the serving store."
    )
    serving_store_lock_wait_ms: Annotated[int, Field(gt=0)] = Field(
        5_000,
        description="How long a write to a SQLite serving store waits for another writer (ms); a scoring "
        "run holds the lock for one chunk of rows at a time.",
    )
    ingest_max_bad_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.05, description="Refuse a batch when more than this share of its rows is invalid."
    )
    ingest_chunk_rows: Annotated[int, Field(gt=0)] = Field(
        250_000, description="Rows read and validated at a time (bounds memory)."
    )
    spark_master: str = Field(
        "local[2]", description="Spark master for --engine spark; local[...] binds to 127.0.0.1 only."
    )
    ingest_future_tolerance_hours: Annotated[float, Field(ge=0.0)] = Field(
        24.0, description="How far past now a timestamp may lie before it counts as a future date."
    )
    erasure_key: SecretStr | None = Field(
        None,
        description="HMAC key for erasure suppression hashes; if unset a random key is created once in "
        "the file CRM_ERASURE_KEY_FILE with mode 0600.",
    )
    erasure_key_file: Path | None = Field(
        None,
        description="File holding the erasure key when CRM_ERASURE_KEY is unset; unset: erasure.key in "
        "the user's config folder (~/.config/crm-analytics on Linux), outside the data folder, or "
        "<data_dir>/erasure.key where an earlier release created it (`crm erase` says how to move it).",
    )

    segments_min_split_half_ari: Annotated[float, Field(ge=-1, le=1)] = Field(
        0.8,
        description="Behavioural clusters refitted on two random halves of the customers (k chosen "
        "again on each) must agree at least this much (adjusted Rand index, -1 to 1) to be registered; "
        "below it the build says why and the previous clustering, if any, stays in use.",
    )
    gate_min_gain_churn: Annotated[float, Field(ge=0, le=1)] = Field(
        0.005,
        description="Promotion gate, churn: the least ROC AUC gain over the champion on the comparison "
        "window; the paired bootstrap 95% interval of the gain must also lie above zero.",
    )
    gate_min_gain_clv: Annotated[float, Field(ge=0, le=2)] = Field(
        0.005,
        description="Promotion gate, CLV: the least gain in the Spearman correlation of predicted with "
        "actual holdout spend; the paired bootstrap 95% interval of the gain must also lie above zero.",
    )
    monitor_baseline_refreshes: Annotated[int, Field(ge=1, le=365)] = Field(
        14, description="Data quality: a check's baseline is its median over this many previous refreshes."
    )
    monitor_min_history: Annotated[int, Field(ge=1, le=365)] = Field(
        3, description="Data quality: refreshes a check needs behind it before it can raise a breach."
    )
    monitor_volume_ratio: Annotated[float, Field(gt=1)] = Field(
        2.0,
        description="Data quality: new rows of a source in breach below baseline / this or above "
        "baseline x this.",
    )
    monitor_share_increase: Annotated[float, Field(gt=0, le=1)] = Field(
        0.02,
        description="Data quality: a share (quarantined rows, missing values, late rows) in breach when "
        "above its baseline by more than this.",
    )
    monitor_alpha: Annotated[float, Field(gt=0, lt=1)] = Field(
        1e-5,
        description="Monitoring: a change (data quality, drift, realized performance) is a breach only "
        "when this unlikely by chance (its p-value), so small days do not raise alarms by chance.",
    )
    monitor_late_days: Annotated[int, Field(ge=0)] = Field(
        3,
        description="Data quality: a new row dated more than this many days before the refresh's day "
        "is late.",
    )
    drift_recent_days: Annotated[int, Field(ge=1, le=365)] = Field(
        7,
        description="Drift: the recent window of purchases (days up to the refresh's day) compared with "
        "the reference window before it.",
    )
    drift_reference_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        90, description="Drift: the reference window's length in days, just before the recent window."
    )
    drift_min_distance: Annotated[float, Field(gt=0, le=1)] = Field(
        0.05,
        description="Drift: the least distance (KS D for numbers, total variation for categories: the "
        "largest change in any event's share) that is a breach, with a p-value below CRM_MONITOR_ALPHA.",
    )
    drift_min_rows: Annotated[int, Field(ge=2)] = Field(
        30, description="Drift: a check needs at least this many rows on each side; with fewer it is skipped."
    )
    realized_max_auc_drop: Annotated[float, Field(gt=0, le=1)] = Field(
        0.05,
        description="Realized performance: a churn champion's ROC AUC on a matured cohort in breach when "
        "below its training figure by more than this (and unlikely by chance).",
    )
    realized_max_churn_odds_ratio: Annotated[float, Field(gt=1)] = Field(
        1.25,
        description="Realized performance: the churn rate a matured cohort showed in breach when its odds "
        "differ from the odds of the mean probability served by more than this factor, either way (and "
        "unlikely by chance).",
    )
    retrain_every_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        7,
        description="`crm retrain`: retrain once the newest mature cutoff is this many days after the "
        "champions' training cutoff (weekly by default; counted in data days).",
    )
    retrain_on_breach: bool = Field(
        True,
        description="`crm retrain`: retrain before the schedule when the family's latest matured cohort, "
        "scored after its last training cutoff, is in breach (see CRM_RETRAIN_BREACH_MIN_DAYS).",
    )
    retrain_breach_min_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        3,
        description="`crm retrain`: a realized-performance breach retrains once at least this many days of "
        "newer mature labels exist since the last training (and at least CRM_MONITOR_LATE_DAYS + 1, as "
        "the cohort must be scored after that training's cutoff).",
    )
    bgbb_occasion_months: Annotated[int, Field(ge=1, le=120)] = Field(
        12,
        description="BG/BB (`crm train bgbb`): calendar months between the occasions at which customers "
        "can buy (12: an annual event or renewal); occasions are counted back from the training cutoff.",
    )
    serving_max_body_bytes: Annotated[int, Field(gt=0)] = Field(
        1_048_576, description="Largest request body the API reads (bytes); larger ones get 413."
    )
    serving_rate_per_minute: Annotated[int, Field(gt=0)] = Field(
        6_000,
        description="Requests per minute per API key, counted once the key is verified (token bucket, "
        "per worker unless CRM_SERVING_REDIS_URL is set); more get 429.",
    )
    serving_rate_burst: Annotated[int, Field(gt=0)] = Field(
        200, description="Requests an API key may make at once before the per-minute rate applies."
    )
    serving_auth_failures: Annotated[int, Field(gt=0)] = Field(
        20,
        description="Failed authentications (unknown or revoked keys) a client address may make per "
        "CRM_SERVING_AUTH_FAILURE_WINDOW_SECONDS; more get 429 before their key is looked up.",
    )
    serving_auth_failure_window_seconds: Annotated[float, Field(gt=0)] = Field(
        60.0, description="The window of CRM_SERVING_AUTH_FAILURES."
    )
    serving_guests_per_key_hour: Annotated[int, Field(gt=0)] = Field(
        500,
        description="Distinct guests an API key may read per clock hour through /v1/offers (per worker "
        "unless CRM_SERVING_REDIS_URL is set); past it the key's identified requests get 429 until the "
        "hour ends.",
    )
    serving_access_log: Path | None = Field(
        None,
        description="The API's access log (JSON lines, mode 0600, an audit store that `crm erase` "
        "tombstones); unset: <data_dir>/access.jsonl.",
    )
    serving_redis_url: str | None = Field(
        None,
        description="Redis URL (redis://127.0.0.1:6379/0) for a rate limit shared by every worker and "
        "host; unset: each worker limits on its own.",
    )
    serving_reload_seconds: Annotated[float, Field(gt=0)] = Field(
        30.0, description="How often the API checks whether a @champion alias moved."
    )
    serving_checkin_window_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        550,
        description="How far ahead of today a booking's check-in may be (it may also be yesterday or "
        "today); a check-in outside the window is refused with 422.",
    )
    serving_exploration: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.05,
        description="Share of /v1/offers answers that show random eligible offers instead of the best, "
        "so the offer log keeps evidence for retraining (0 turns it off).",
    )
    feedback_answer_days: Annotated[int, Field(ge=1)] = Field(
        14,
        description="Days we wait for the answer to a shown offer before it goes into the offer log "
        "(no answer by then: declined).",
    )

    @property
    def incoming(self) -> Path:
        """The folder the daily refresh reads new files from."""
        return self.incoming_dir or self.data_dir / "incoming"

    @property
    def access_log(self) -> Path:
        """The API's access log file."""
        return self.serving_access_log or self.data_dir / "access.jsonl"

    def masked_dump(self) -> dict[str, object]:
        """The settings as JSON values with every URL's password masked (for ``crm config``)."""
        values = self.model_dump(mode="json")  # a SecretStr dumps as asterisks already
        return {name: mask_url(v) if name.endswith(_URL_FIELDS) else v for name, v in values.items()}

    @field_validator("warehouse_url")
    @classmethod
    def _warehouse_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in WAREHOUSE_SCHEMES:
            raise ValueError(
                f"scheme must be one of {', '.join(WAREHOUSE_SCHEMES)}, e.g. duckdb:///data/w.duckdb"
            )
        return value

    @field_validator("serving_store_url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        try:
            make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a SQLAlchemy URL ({exc})") from None
        return value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _mlflow_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else "file"
        if scheme.split("+", 1)[0] not in MLFLOW_SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(MLFLOW_SCHEMES)}")
        return value


def load_settings(**overrides: object) -> Settings:
    """Build Settings from defaults, ``.env`` and ``CRM_*``; a bad value raises SettingsError naming it."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"CRM_{field.upper()}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def folder_settings(folder: Path) -> dict[str, str]:
    """The ``CRM_*`` variables that keep a whole project inside ``folder``: the data folder, warehouse,
    MLflow store and serving store where the defaults put them, under ``folder`` instead of the working
    directory (benchmarks and tests run projects of their own this way)."""
    return {
        "CRM_DATA_DIR": str(folder / "data"),
        "CRM_WAREHOUSE_URL": f"duckdb:///{folder / 'data' / 'warehouse.duckdb'}",
        "CRM_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}",
        "CRM_MLFLOW_ARTIFACT_ROOT": str(folder / "mlruns" / "artifacts"),
        "CRM_SERVING_STORE_URL": f"sqlite:///{folder / 'data' / 'serving.db'}",
    }


def settings_markdown() -> str:
    """Every setting as a Markdown table (``CRM_<NAME>``, default, description) for docs/settings.md."""
    lines = [
        "# Settings",
        "",
        "Generated from `src/settings.py` by `crm config --docs-out docs/settings.md`: do not edit.",
        "One `Settings` object; each field's default is overridden by a `.env` file in the working folder",
        "or by the environment variable `CRM_<NAME>`. A bad value stops every command at start-up with the",
        "variable's name (exit code 2).",
        "",
        "| variable | default | description |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else f"`{field.default}`"
        description = (field.description or "").replace("|", "\\|").replace("<", "&lt;")
        lines.append(f"| `CRM_{name.upper()}` | {default} | {description} |")
    return "\n".join(lines) + "\n"
