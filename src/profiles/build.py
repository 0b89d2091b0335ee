"""Build the unified customers: link source records, apply survivorship, store, and log the linkage.

``crm profiles build`` runs :func:`build_profiles`. Features, offers and segments read transactions
through ``customer_links`` afterwards, so rebuild features after a re-link.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd

from crm_analytics.errors import NotReadyError
from crm_analytics.profiles import linkage
from crm_analytics.profiles.quality import PairwiseQuality, pairwise_quality, read_identities
from crm_analytics.profiles.records import latest_records, match_frame, read_records, record_key
from crm_analytics.profiles.store import replace_profile_tables
from crm_analytics.profiles.survivorship import SurvivorshipRules, survive
from crm_analytics.profiles.tables import CONFLICTS, LINKS, MODEL, PROFILES, RECORDS, SERVICE_FACTS
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure, use_experiment
from crm_analytics.warehouse import Warehouse

EXPERIMENT = "crm-profiles"


@dataclass(frozen=True)
class ProfileBuild:
    """What a build produced (counts and quality only: no personal data)."""

    records: int
    customers: int
    linked_by: dict[str, int]
    conflicts: int
    service_facts: int
    threshold: float
    quality: PairwiseQuality | None
    run_id: str | None

    def as_dict(self) -> dict[str, object]:
        out = {k: v for k, v in self.__dict__.items() if k != "quality"}
        return out | {"quality": self.quality.as_dict() if self.quality else None}


def build_profiles(
    warehouse: Warehouse,
    settings: Settings,
    *,
    threshold: float = linkage.DEFAULT_THRESHOLD,
    truth_dir: Path | None = None,
    rules: SurvivorshipRules | None = None,
    seed: int = 0,
    log_run: bool = True,
) -> ProfileBuild:
    """Link every source record, survive one profile per customer and replace the profile tables.

    With ``truth_dir`` (the demo data's truth folder) the clustering is scored against the true
    identities; the quality and the threshold are logged to MLflow (experiment ``crm-profiles``)."""
    if not warehouse.has_table("customer_records") or warehouse.count("customer_records") == 0:
        raise NotReadyError("customer_records: no customer records in the warehouse; ingest them first")
    history = read_records(warehouse)
    matchable = match_frame(latest_records(history))
    linker = linkage.train_linker(matchable, seed=seed)
    clusters = linkage.cluster_records(
        matchable, linkage.deterministic_pairs(matchable), linkage.scored_pairs(linker), threshold
    )
    links = matchable[["unique_id", "source", "source_customer_id"]].merge(clusters.links, on="unique_id")
    history = history.assign(unique_id=record_key(history["source"], history["source_customer_id"]))
    linked_history = history.merge(links[["unique_id", "customer_id"]], on="unique_id")
    survivors = survive(linked_history, rules)
    built_at = datetime.now(UTC).replace(tzinfo=None)
    model = linkage.model_json(linker)
    replace_profile_tables(
        warehouse,
        {
            LINKS: links.assign(linked_at=built_at),
            PROFILES: survivors.profiles.assign(built_at=built_at),
            SERVICE_FACTS: survivors.service_facts,
            CONFLICTS: survivors.conflicts,
            RECORDS: matchable.merge(links[["unique_id", "customer_id"]], on="unique_id"),
            MODEL: pd.DataFrame(
                {"built_at": [built_at], "threshold": [threshold], "settings_json": [json.dumps(model)]}
            ),
        },
    )
    quality = None
    if truth_dir is not None:
        truth = read_identities(truth_dir)
        quality = pairwise_quality(clusters.links.set_index("unique_id")["customer_id"], truth)
    build = ProfileBuild(
        records=len(matchable),
        customers=int(links["customer_id"].nunique()),
        linked_by={str(k): int(v) for k, v in links["matched_by"].value_counts().items()},
        conflicts=len(survivors.conflicts),
        service_facts=len(survivors.service_facts),
        threshold=threshold,
        quality=quality,
        run_id=None,
    )
    if not log_run:
        return build
    return _log_build(settings, build, model, seed)


def _log_build(settings: Settings, build: ProfileBuild, model: dict[str, object], seed: int) -> ProfileBuild:
    """Log the threshold, counts, quality and the linkage model (m/u probabilities only) to MLflow."""
    configure(settings)
    use_experiment(settings, EXPERIMENT)
    with mlflow.start_run(run_name="profiles-build") as run:
        mlflow.log_params({"threshold": build.threshold, "seed": seed, "engine": "splink-duckdb"})
        mlflow.log_metrics(
            {"records": float(build.records), "customers": float(build.customers)}
            | {"conflicts": float(build.conflicts)}
            | {f"linked_by_{k}": float(v) for k, v in build.linked_by.items()}
        )
        if build.quality is not None:
            q = build.quality
            mlflow.log_metrics(
                {"pairwise_precision": q.precision, "pairwise_recall": q.recall, "pairwise_f1": q.f1}
            )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "linkage_model.json"
            path.write_text(json.dumps(model, indent=2))
            mlflow.log_artifact(str(path))
    return ProfileBuild(**{**build.__dict__, "run_id": run.info.run_id})
