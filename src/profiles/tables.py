"""The warehouse tables profiles write: names, columns and keys in one place.

``customer_links`` is the bridge every later layer uses: it maps each source record
``(source, source_customer_id)`` to the unified ``customer_id``. Transactions and offer-log rows carry
their source system's account id in ``customer_id``; joined on ``(source, customer_id)`` they attach to
the unified customer. Accounts without a link keep their own id.
"""

from __future__ import annotations

LINKS = "customer_links"
PROFILES = "customer_profiles"
SERVICE_FACTS = "customer_service_facts"
CONFLICTS = "profile_conflicts"
RECORDS = "profile_records"
MODEL = "profile_linkage_model"
MERGES = "customer_merges"

LINK_COLUMNS = {
    "source": "TEXT",
    "source_customer_id": "TEXT",
    "customer_id": "TEXT",
    "match_probability": "DOUBLE PRECISION",
    "matched_by": "TEXT",
    "linked_at": "TIMESTAMP",
}

# Fields that survive as a unit: the group's provenance columns are <group>_source and <group>_updated_at.
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "name": ("first_name", "last_name"),
    "email": ("email",),
    "phone": ("phone",),
    "address": ("street", "city", "postcode", "country"),
    "birth_date": ("birth_date",),
    "marketing_consent": ("marketing_consent",),
    "loyalty_id": ("loyalty_id",),
}
_FIELD_TYPES = {"birth_date": "TIMESTAMP", "marketing_consent": "BOOLEAN"}
PROFILE_COLUMNS = (
    {"customer_id": "TEXT"}
    | {
        column: kind
        for group, names in FIELD_GROUPS.items()
        for column, kind in (
            *[(name, _FIELD_TYPES.get(name, "TEXT")) for name in names],
            (f"{group}_source", "TEXT"),
            (f"{group}_updated_at", "TIMESTAMP"),
        )
    }
    | {"sources": "TEXT", "record_count": "BIGINT", "built_at": "TIMESTAMP"}
)

SERVICE_FACT_COLUMNS = {
    "customer_id": "TEXT",
    "fact": "TEXT",  # allergy | accessibility | room_preference
    "value": "TEXT",
    "source": "TEXT",
    "last_confirmed": "TIMESTAMP",
}
CONFLICT_COLUMNS = {"customer_id": "TEXT", "field": "TEXT", "candidates": "TEXT", "reason": "TEXT"}
RECORD_COLUMNS = {
    "unique_id": "TEXT",
    "source": "TEXT",
    "source_customer_id": "TEXT",
    "customer_id": "TEXT",
    "first_name": "TEXT",
    "last_name": "TEXT",
    "email": "TEXT",
    "phone": "TEXT",
    "loyalty_id": "TEXT",
    "birth_date": "TEXT",
    "street": "TEXT",
    "postcode": "TEXT",
    "city": "TEXT",
    "versions": "TEXT",  # fingerprint of the record's versions when linked: what changed since
}
MODEL_COLUMNS = {"built_at": "TIMESTAMP", "threshold": "DOUBLE PRECISION", "settings_json": "TEXT"}
# a previous customer id that went into another customer: reason 'merge' (the id is retired) or 'split'
# (some of its records left for ``into_id``); appended by every build, never replaced
MERGE_COLUMNS = {"from_id": "TEXT", "into_id": "TEXT", "merged_at": "TIMESTAMP", "reason": "TEXT"}

TABLES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    LINKS: (LINK_COLUMNS, ("source", "source_customer_id")),
    PROFILES: (PROFILE_COLUMNS, ("customer_id",)),
    SERVICE_FACTS: (SERVICE_FACT_COLUMNS, ("customer_id", "fact", "value", "source")),
    CONFLICTS: (CONFLICT_COLUMNS, ("customer_id", "field")),
    RECORDS: (RECORD_COLUMNS, ("unique_id",)),
    MODEL: (MODEL_COLUMNS, ()),
    MERGES: (MERGE_COLUMNS, ("from_id", "into_id")),
}
# the tables a build rewrites (all of a full build's rows, or the re-linked customers' rows)
REBUILT = (LINKS, PROFILES, SERVICE_FACTS, CONFLICTS, RECORDS)
