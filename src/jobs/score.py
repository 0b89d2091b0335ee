"""Batch scoring (``crm score``): every customer's scores, segments, guest brief and profile from the
warehouse and the ``@champion`` models into the serving store, as one atomic snapshot.

A customer is anyone with a feature row at the cutoff (scores, history) or a unified profile (brief,
profile, contact details for look-ups); a guest with a profile but no purchases yet gets a brief and no
scores. Every family the registry marks as scored (``ModelFamily.score``) adds its outputs; the CLV
interval is simulated here, once per run, so the API only reads it. Customers go in id ranges
(``chunk_customers``), so memory stays bounded for millions of them; the CLV interval's random streams
follow row positions within a chunk, so a run is reproducible for a given chunk size. The scores also
go to the warehouse's ``customer_scores`` (``score_table``), replaced for the cutoff once the store has
switched.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from crm_analytics.errors import InvalidInputError, NotReadyError
from crm_analytics.features.store import build_record, read_features
from crm_analytics.jobs import score_rows
from crm_analytics.jobs.common import Progress, no_progress, open_store, open_warehouse
from crm_analytics.jobs.score_carry import personal_columns, plan_carry
from crm_analytics.jobs.score_table import ScoreTable
from crm_analytics.models import registry
from crm_analytics.models.family import ModelFamily
from crm_analytics.models.gate import load_champions
from crm_analytics.models.offers.family import FAMILY as OFFERS
from crm_analytics.models.segments.consent import marketing_consent
from crm_analytics.models.segments.membership import TABLE as MEMBERSHIP
from crm_analytics.profiles.store import latest_build_time
from crm_analytics.profiles.tables import PROFILES
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore, Snapshot, now
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse, id_ranges

ENGINES = ("local", "spark")


@dataclass(frozen=True)
class ScoreReport:
    """What a scoring run wrote (counts and versions only)."""

    snapshot_id: str
    as_of: str
    customers: int
    scored: int
    with_brief: int
    segment_rows: int
    models: dict[str, str]
    carried: int = 0  # customers whose brief, profile, contacts and look-up records were copied

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(
    settings: Settings,
    as_of: date | None = None,
    *,
    chunk_customers: int = 50_000,
    engine: str = "local",
    progress: Progress = no_progress,
) -> ScoreReport:
    """Score every customer with the champions into the serving store, switching atomically; ``engine``
    ``spark`` computes the families' scores on Spark (``CRM_SPARK_MASTER``)."""
    if engine not in ENGINES:
        raise InvalidInputError(f"--engine: expected local or spark, got {engine!r}")
    if chunk_customers < 1:
        raise InvalidInputError(f"--chunk-customers: must be at least 1, got {chunk_customers}")
    with open_warehouse(settings) as warehouse:
        as_of = as_of or latest_cutoff(warehouse)
        store = open_store(settings)
        if engine == "local":
            return score_all(
                settings, warehouse, store, as_of, chunk_customers=chunk_customers, progress=progress
            )
        from crm_analytics.jobs.score_spark import score_on_spark

        folder = settings.data_dir / "spark"  # executors of a cluster must see it
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as run:  # features of customers: deleted after
            progress("scoring on Spark")
            spark_scores = score_on_spark(settings, warehouse, as_of, Path(run))
            return score_all(
                settings,
                warehouse,
                store,
                as_of,
                chunk_customers=chunk_customers,
                progress=progress,
                spark_scores=spark_scores,
            )


def latest_cutoff(warehouse: Warehouse) -> date:
    """The most recent feature build's cutoff; a NotReadyError saying what to run when there is none."""
    if warehouse.count("feature_builds") == 0:
        raise NotReadyError("features: no feature build yet; run `crm features build --as-of DATE` first")
    return pd.Timestamp(warehouse.fetch("SELECT MAX(as_of) AS as_of FROM feature_builds")["as_of"][0]).date()


def score_all(
    settings: Settings,
    warehouse: Warehouse,
    store: ServingStore,
    as_of: date | None = None,
    *,
    chunk_customers: int = 50_000,
    progress: Progress = no_progress,
    spark_scores: Any = None,
) -> ScoreReport:
    """Score every customer as of ``as_of`` (default: the latest feature build) and switch the store.

    The rows of all chunks and the switch commit in one transaction. ``spark_scores``: the families'
    scores already computed on Spark (``score_spark``), read range by range instead of predicted here.
    """
    as_of = as_of or latest_cutoff(warehouse)
    models, loaded = champions(settings)
    if spark_scores is not None and spark_scores.models != {k: models[k] for k in spark_scores.models}:
        raise NotReadyError("a champion moved while Spark was scoring; run `crm score` again")
    history_columns = list(loaded[OFFERS.name].unwrap_python_model().full.customer_columns_)
    ids = _customer_ids(warehouse, as_of)
    ranges = id_ranges(ids, chunk_customers)
    counts = {"scored": 0, "with_brief": 0, "segment_rows": 0}
    carry = plan_carry(warehouse, store)  # unchanged customers' personal rows: copied, not rebuilt
    table = ScoreTable(warehouse, as_of, models, _outputs())  # the scores in the warehouse too, once switched
    kept = carry.customers if carry else frozenset()

    def customer_rows() -> Iterator[dict[str, Any]]:
        done = 0
        for within in ranges:
            # in id order: the CLV interval's random streams follow row positions within a chunk
            features = read_features(warehouse, as_of, within).set_index("customer_id")
            frame = spark_scores.read(list(features.index)) if spark_scores else predict(loaded, features)
            table.add(frame)
            scores = score_rows.json_rows(frame.round(6))
            history = score_rows.json_rows(features.reindex(columns=history_columns))
            segments = score_rows.segments_by_customer(score_rows.membership_rows(warehouse, within))
            personal = personal_columns(warehouse, store, carry, within)
            chunk_ids = sorted(set(features.index) | personal.customers())
            consent = marketing_consent(warehouse, pd.Series(chunk_ids, index=chunk_ids), within).to_dict()
            counts["scored"] += len(scores)
            counts["with_brief"] += personal.with_brief()
            for cid in chunk_ids:
                brief, profile = personal.of(cid)
                yield {
                    "customer_id": cid,
                    "scores": scores.get(cid),
                    "segments": score_rows.as_json(segments.get(cid, {})),
                    "history": history.get(cid),
                    "brief": brief,
                    "profile": profile,
                    "consent": bool(consent[cid]),
                }
            done += len(chunk_ids)
            progress("scoring customers", done, len(ids))

    def member_rows() -> Iterator[dict[str, Any]]:
        for within in ranges:
            membership = score_rows.membership_rows(warehouse, within)
            members = pd.Series(membership["customer_id"].unique())
            consent = marketing_consent(warehouse, pd.Series(members.to_numpy(), index=members), within)
            rows = score_rows.member_rows(membership, consent)
            counts["segment_rows"] += len(rows)
            yield from rows

    try:
        offers = score_rows.catalogue(warehouse, "offers", "offer_id")
        hotels = score_rows.catalogue(warehouse, "hotels", "hotel_id")
        made_with = models | segment_versions(warehouse)  # the segments' definitions made it too
        snapshot = Snapshot(
            uuid.uuid4().hex,
            now(),
            str(as_of),
            made_with,
            len(ids),
            offers,
            hotels,
            latest_build_time(warehouse),
        )
        store.write_snapshot(
            snapshot,
            customer_rows(),
            member_rows(),
            (row for within in ranges for row in score_rows.contact_rows(warehouse, within, kept)),
            lookup_rows=(row for within in ranges for row in score_rows.lookup_rows(warehouse, within, kept)),
            linkage=score_rows.linkage_model(warehouse),
            carry=carry,
        )
    except BaseException:
        table.discard()
        raise
    table.commit()
    return ScoreReport(
        snapshot.snapshot_id,
        str(as_of),
        len(ids),
        counts["scored"],
        counts["with_brief"],
        counts["segment_rows"],
        made_with,
        len(kept),
    )


def champions(settings: Settings) -> tuple[dict[str, str], dict[str, Any]]:
    """The @champion version and loaded pyfunc of every family a snapshot needs: the scored ones and the
    served ones (the offer model decides which history columns a snapshot keeps)."""
    found, loaded = load_champions(configure(settings), _needed())
    return {name: version for name, (version, _) in found.items()}, loaded


def segment_versions(warehouse: Warehouse) -> dict[str, str]:
    """The registered name and version of each segment definition the stored membership comes from."""
    if not warehouse.has_table(MEMBERSHIP) or warehouse.count(MEMBERSHIP) == 0:
        return {}
    rows = warehouse.fetch(f'SELECT DISTINCT definition_version FROM "{MEMBERSHIP}"')["definition_version"]
    return dict(str(v).rsplit("/", 1) for v in rows if v and "/" in str(v))


def predict(loaded: dict[str, Any], features: pd.DataFrame) -> pd.DataFrame:
    """Every scored family's outputs for feature rows indexed by customer id, side by side."""
    if features.empty:
        return pd.DataFrame(index=features.index, columns=list(_outputs()), dtype=float)
    frames = [family.score(loaded[family.name], features) for family in registry.scored() if family.score]
    return pd.concat(frames, axis=1)


def _needed() -> tuple[ModelFamily, ...]:
    return tuple(f for f in registry.FAMILIES if f.score is not None or f.served)


def _outputs() -> dict[str, str]:
    """Every scored family's output columns (name -> Spark SQL type)."""
    return {name: kind for family in registry.scored() for name, kind in family.outputs.items()}


def _customer_ids(warehouse: Warehouse, as_of: date) -> list[str]:
    """Everyone with features at ``as_of`` or a profile, in the warehouse's own order of ids, so the
    ranges cut from them agree with its comparisons whatever its collation."""
    build_record(warehouse, as_of)  # a LookupError saying what to run when there is no build
    query = f"SELECT customer_id FROM features WHERE as_of = DATE '{as_of.isoformat()}'"
    query += f" UNION SELECT customer_id FROM {PROFILES}"
    ordered = warehouse.fetch(f"SELECT customer_id FROM ({query}) ids ORDER BY customer_id")
    return [str(c) for c in ordered["customer_id"]]
