"""Build the unified customers: link source records, apply survivorship, store, and log the linkage.

``crm profiles build`` runs :func:`build_profiles`. Features, offers and segments read transactions
through ``customer_links`` afterwards, so rebuild features after a re-link.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from crm_analytics.errors import NotReadyError
from crm_analytics.profiles import linkage
from crm_analytics.profiles.ids import assign_ids
from crm_analytics.profiles.incremental import Previous, changes, fingerprints, load_previous, relink
from crm_analytics.profiles.quality import PairwiseQuality, pairwise_quality, read_identities
from crm_analytics.profiles.records import latest_records, match_frame, read_records, record_key
from crm_analytics.profiles.store import latest_build_time, replace_profile_tables
from crm_analytics.profiles.survivorship import Survivors, SurvivorshipRules, survive
from crm_analytics.profiles.tables import (
    CONFLICTS,
    LINKS,
    MERGES,
    MODEL,
    PROFILES,
    RECORDS,
    SERVICE_FACTS,
)
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure, use_experiment
from crm_analytics.warehouse import Warehouse

EXPERIMENT = "crm-profiles"


@dataclass(frozen=True)
class ProfileBuild:
    """What a build produced (counts and quality only: no personal data).

    ``changed_records``: records new or changed since the last build; ``relinked_records``: records
    re-clustered (all of them in a full build; in an incremental one the changed records and the
    records of the customers they touch); ``merges``: rows added to ``customer_merges``."""

    records: int
    customers: int
    linked_by: dict[str, int]
    conflicts: int
    service_facts: int
    threshold: float
    quality: PairwiseQuality | None
    run_id: str | None
    incremental: bool = False
    changed_records: int = 0
    relinked_records: int = 0
    merges: int = 0

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
    incremental: bool = False,
) -> ProfileBuild:
    """Link the source records, survive one profile per customer and write the profile tables.

    Customers keep their ids across builds (``ids.assign_ids``; merges and splits go to
    ``customer_merges``). ``incremental``: re-link only the customers new or changed records touch,
    with the stored linkage model (``incremental.relink``); a full build when there is no previous
    build to start from or ``threshold`` differs from its threshold. Nothing changed: nothing is
    written. With ``truth_dir`` (the demo data's truth folder) the clustering is scored against the
    true identities; the quality and the threshold are logged to MLflow (experiment ``crm-profiles``)."""
    if not warehouse.has_table("customer_records") or warehouse.count("customer_records") == 0:
        raise NotReadyError("customer_records: no customer records in the warehouse; ingest them first")
    history = read_records(warehouse)
    history["unique_id"] = record_key(history["source"], history["source_customer_id"])
    versions = fingerprints(history)
    previous = load_previous(warehouse)
    if incremental and previous and previous.versions_known and previous.threshold == threshold:
        build, model = _incremental(warehouse, history, versions, previous, rules, truth_dir)
    else:
        build, model = _full(warehouse, history, versions, previous, threshold, rules, truth_dir, seed)
    if not log_run:
        return build
    return _log_build(settings, build, model, seed)


def _full(
    warehouse: Warehouse,
    history: pd.DataFrame,
    versions: pd.Series,
    previous: Previous | None,
    threshold: float,
    rules: SurvivorshipRules | None,
    truth_dir: Path | None,
    seed: int,
) -> tuple[ProfileBuild, dict[str, Any]]:
    """Train the linkage model on every record, cluster them all, replace every profile row."""
    matchable = match_frame(latest_records(history))
    linker = linkage.train_linker(matchable, seed=seed)
    clusters = linkage.cluster_records(
        matchable, linkage.deterministic_pairs(matchable), linkage.scored_pairs(linker), threshold
    )
    model = linkage.model_json(linker)
    built_at = _stamp(warehouse)
    links, merges = _identify(matchable, clusters, previous, built_at)
    survivors = survive(history.merge(links[["unique_id", "customer_id"]], on="unique_id"), rules)
    frames = _frames(matchable, links, survivors, versions, merges, built_at)
    frames[MODEL] = pd.DataFrame(
        {"built_at": [built_at], "threshold": [threshold], "settings_json": [json.dumps(model)]}
    )
    replace_profile_tables(warehouse, frames)
    build = _report(links, len(survivors.conflicts), len(survivors.service_facts), threshold, truth_dir)
    changed = len(changes(previous, versions)[0]) if previous is not None else len(matchable)
    return replace(build, changed_records=changed, relinked_records=len(matchable), merges=len(merges)), model


def _incremental(
    warehouse: Warehouse,
    history: pd.DataFrame,
    versions: pd.Series,
    previous: Previous,
    rules: SurvivorshipRules | None,
    truth_dir: Path | None,
) -> tuple[ProfileBuild, dict[str, Any]]:
    """Re-link only what changed since ``previous`` and replace only the touched customers' rows."""
    change = relink(history, previous, versions)
    changed = relinked_records = merged = 0
    links = previous.links.assign(
        unique_id=record_key(previous.links["source"], previous.links["source_customer_id"])
    )
    if change is not None:
        built_at = _stamp(warehouse)
        relinked, merges = _identify(change.matchable, change.clusters, previous, built_at)
        linked_history = history.merge(relinked[["unique_id", "customer_id"]], on="unique_id")
        survivors = survive(linked_history, rules)
        frames = _frames(change.matchable, relinked, survivors, versions, merges, built_at)
        replace_profile_tables(warehouse, frames, customers=change.touched)
        links = pd.concat([links[~links["customer_id"].isin(change.touched)], relinked], ignore_index=True)
        changed, relinked_records, merged = change.changed, len(relinked), len(merges)
    conflicts, facts = warehouse.count(CONFLICTS), warehouse.count(SERVICE_FACTS)
    build = _report(links, conflicts, facts, previous.threshold, truth_dir)
    build = replace(build, changed_records=changed, relinked_records=relinked_records, merges=merged)
    return replace(build, incremental=True), previous.model


def _identify(
    matchable: pd.DataFrame, clusters: linkage.Clusters, previous: Previous | None, built_at: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Links with stable customer ids (each record's source keys, id, how it matched) and the merges
    and splits since ``previous``."""
    provisional = clusters.links.set_index("unique_id")["customer_id"]
    before = previous.customer_of if previous is not None else pd.Series(dtype=object)
    used = previous.used_ids if previous is not None else set()
    assigned = assign_ids(provisional, before, used, built_at)
    links = matchable[["unique_id", "source", "source_customer_id"]].merge(
        clusters.links.assign(customer_id=assigned.customer_ids.to_numpy()), on="unique_id"
    )
    return links, assigned.merges


def _frames(
    matchable: pd.DataFrame,
    links: pd.DataFrame,
    survivors: Survivors,
    versions: pd.Series,
    merges: pd.DataFrame,
    built_at: datetime,
) -> dict[str, pd.DataFrame]:
    """The rows a build writes for the customers in ``links``."""
    records = matchable.merge(links[["unique_id", "customer_id"]], on="unique_id")
    return {
        LINKS: links.assign(linked_at=built_at),
        PROFILES: survivors.profiles.assign(built_at=built_at),
        SERVICE_FACTS: survivors.service_facts,
        CONFLICTS: survivors.conflicts,
        RECORDS: records.assign(versions=records["unique_id"].map(versions)),
        MERGES: merges,
    }


def _report(
    links: pd.DataFrame, conflicts: int, facts: int, threshold: float, truth_dir: Path | None
) -> ProfileBuild:
    """Counts over every customer (``links``: all records' links after the build) and the quality."""
    quality = None
    if truth_dir is not None:
        truth = read_identities(truth_dir)
        quality = pairwise_quality(links.set_index("unique_id")["customer_id"], truth)
    return ProfileBuild(
        records=len(links),
        customers=int(links["customer_id"].nunique()),
        linked_by={str(k): int(v) for k, v in links["matched_by"].value_counts().items()},
        conflicts=conflicts,
        service_facts=facts,
        threshold=threshold,
        quality=quality,
        run_id=None,
    )


def _stamp(warehouse: Warehouse) -> datetime:
    """This build's time: now, or just after the latest build's when the clock reads earlier (another
    host's clock, a step back), so a later build always stamps its customers later: a scoring run
    copies the personal rows of customers stamped no later than its snapshot's build
    (``jobs/score_carry.py``)."""
    now, latest = _now(), latest_build_time(warehouse)
    return now if latest is None else max(now, latest + timedelta(microseconds=1))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _log_build(settings: Settings, build: ProfileBuild, model: dict[str, object], seed: int) -> ProfileBuild:
    """Log the threshold, counts, quality and the linkage model (m/u probabilities only) to MLflow."""
    configure(settings)
    use_experiment(settings, EXPERIMENT)
    with mlflow.start_run(run_name="profiles-build") as run:
        mlflow.set_tag("incremental", str(build.incremental).lower())
        mlflow.log_params(
            {"threshold": build.threshold, "seed": seed, "engine": "splink-duckdb"}
            | {"incremental": build.incremental}
        )
        mlflow.log_metrics(
            {"records": float(build.records), "customers": float(build.customers)}
            | {k: float(getattr(build, k)) for k in ("changed_records", "relinked_records", "merges")}
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
