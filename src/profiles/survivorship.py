"""Survivorship: one value per field for each unified customer, with its provenance.

Rules (``SurvivorshipRules``):

- For each field group (``tables.FIELD_GROUPS``: a name or an address survives as a whole) the most
  recent value from a source trusted for that group wins; equal times go to the source listed first.
  A source not trusted for a group is used only when no trusted source has a value. Every surviving
  group keeps ``<group>_source`` and ``<group>_updated_at``.
- E-mail addresses of booking relays (``…@guest.ota-relay.example``) reach the platform, not the
  guest: they survive only when no other address is known.
- Identifiers that do not change over time (birth date, loyalty id) cannot be settled by recency: when
  the records disagree the field stays empty and the disagreement goes to ``profile_conflicts`` for
  review.
- Service facts (allergies, accessibility needs, room preferences) are never chosen between: every value
  any version of any record held is kept, per source, with the last date that source confirmed it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from crm_analytics.profiles.tables import FIELD_GROUPS

SERVICE_FACT_COLUMNS = {
    "allergies": "allergy",
    "accessibility_needs": "accessibility",
    "room_preferences": "room_preference",
}


@dataclass(frozen=True)
class SurvivorshipRules:
    """Which sources are trusted for each field group, most trusted first."""

    trusted: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "name": ("crm", "billing", "booking"),
            "email": ("crm", "booking", "billing"),
            "phone": ("crm", "booking", "billing"),
            "address": ("billing", "crm", "booking"),
            "birth_date": ("crm", "booking", "billing"),
            "marketing_consent": ("crm", "booking", "billing"),
            "loyalty_id": ("crm", "booking"),
        }
    )
    stable: tuple[str, ...] = ("birth_date", "loyalty_id")
    relay_email: str = r"@[^@]*relay[^@]*$"


@dataclass(frozen=True)
class Survivors:
    """The surviving profiles, the unioned service facts and the conflicts left for review."""

    profiles: pd.DataFrame
    service_facts: pd.DataFrame
    conflicts: pd.DataFrame


def survive(records: pd.DataFrame, rules: SurvivorshipRules | None = None) -> Survivors:
    """Profiles from every version of every linked record (``records`` carries ``customer_id``)."""
    rules = rules or SurvivorshipRules()
    customers = records.groupby("customer_id", sort=True)
    profiles = pd.DataFrame(
        {
            "customer_id": list(customers.groups),
            "sources": customers["source"].agg(lambda s: ",".join(sorted(set(s)))).to_numpy(),
            "record_count": customers["source_customer_id"].nunique().to_numpy(),
        }
    )
    conflicts = []
    for group, columns in FIELD_GROUPS.items():
        winners, disputed = _surviving(records, group, columns, rules)
        profiles = profiles.merge(winners, on="customer_id", how="left")
        conflicts.append(disputed)
    ordered = ["customer_id", *[c for c in _profile_order() if c in profiles], "sources", "record_count"]
    return Survivors(
        profiles=profiles[ordered],
        service_facts=service_facts(records),
        conflicts=pd.concat(conflicts, ignore_index=True),
    )


def surviving_values(
    records: pd.DataFrame, group: str, rules: SurvivorshipRules | None = None
) -> pd.DataFrame:
    """The winning value of one field group per customer (with provenance), by the same rule as
    :func:`survive`: for reading one field fresh from the records without a full build."""
    return _surviving(records, group, FIELD_GROUPS[group], rules or SurvivorshipRules())[0]


def _surviving(
    records: pd.DataFrame, group: str, columns: tuple[str, ...], rules: SurvivorshipRules
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The winning value of one field group per customer, and the customers whose records disagree on
    a stable group (their value is left empty)."""
    present = [c for c in columns if c in records]
    provenance = [f"{group}_source", f"{group}_updated_at"]
    if not present:
        return pd.DataFrame(columns=["customer_id", *columns, *provenance]), _no_conflicts()
    candidates = records[records[present].notna().any(axis=1)].copy()
    trusted = rules.trusted.get(group, ())
    rank = {source: i for i, source in enumerate(trusted)}
    candidates["_untrusted"] = ~candidates["source"].isin(trusted)
    candidates["_rank"] = candidates["source"].map(rank).fillna(len(trusted))
    candidates["_unreachable"] = False
    if group == "email":
        candidates["_unreachable"] = candidates["email"].str.contains(rules.relay_email, regex=True)
    ordered = candidates.sort_values(
        ["customer_id", "_unreachable", "_untrusted", "updated_at", "_rank"],
        ascending=[True, True, True, False, True],
    )
    winners = ordered.drop_duplicates("customer_id")
    out = winners[["customer_id", *present]].assign(
        **{provenance[0]: winners["source"].to_numpy(), provenance[1]: winners["updated_at"].to_numpy()}
    )
    if group not in rules.stable:
        return out, _no_conflicts()
    values = candidates.assign(_value=candidates[present].astype(str).agg("|".join, axis=1))
    distinct = values.groupby("customer_id")["_value"].nunique()
    disputed_ids = distinct.index[distinct > 1]
    out.loc[out["customer_id"].isin(disputed_ids), [*present, *provenance]] = None
    disputed = values[values["customer_id"].isin(disputed_ids)]
    return out, _conflict_rows(disputed, group, present)


def _conflict_rows(disputed: pd.DataFrame, group: str, columns: list[str]) -> pd.DataFrame:
    """One review row per customer: the candidates (value, source, updated_at) as JSON."""
    rows = []
    for customer_id, part in disputed.groupby("customer_id"):
        candidates = [
            {
                "value": {c: _json_value(row[c]) for c in columns},
                "source": row["source"],
                "updated_at": pd.Timestamp(row["updated_at"]).isoformat(),
            }
            for _, row in part.iterrows()
        ]
        rows.append(
            {
                "customer_id": customer_id,
                "field": group,
                "candidates": json.dumps(candidates, ensure_ascii=False),
                "reason": f"records disagree on {group}, which does not change over time",
            }
        )
    return pd.DataFrame(rows, columns=["customer_id", "field", "candidates", "reason"])


def service_facts(records: pd.DataFrame) -> pd.DataFrame:
    """Every service fact of every record version, split at ``;``: one row per (customer, fact, value,
    source) with the latest ``updated_at`` of a record of that source holding it."""
    parts = []
    for column, fact in SERVICE_FACT_COLUMNS.items():
        if column not in records:
            continue
        held = records[records[column].notna()][["customer_id", "source", "updated_at", column]]
        values = held.assign(value=held[column].astype(str).str.split(";")).explode("value")
        values["value"] = values["value"].str.strip()
        values = values[values["value"] != ""]
        values["_key"] = values["value"].str.casefold()
        parts.append(values.assign(fact=fact))
    if not parts:
        return pd.DataFrame(columns=["customer_id", "fact", "value", "source", "last_confirmed"])
    facts = pd.concat(parts, ignore_index=True).sort_values("updated_at")
    latest = facts.groupby(["customer_id", "fact", "_key", "source"], as_index=False).agg(
        value=("value", "last"), last_confirmed=("updated_at", "max")
    )
    return latest[["customer_id", "fact", "value", "source", "last_confirmed"]].reset_index(drop=True)


def _profile_order() -> list[str]:
    return [
        c
        for group, columns in FIELD_GROUPS.items()
        for c in (*columns, f"{group}_source", f"{group}_updated_at")
    ]


def _json_value(value: object) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.isoformat() if isinstance(value, pd.Timestamp) else value


def _no_conflicts() -> pd.DataFrame:
    return pd.DataFrame(columns=["customer_id", "field", "candidates", "reason"])
