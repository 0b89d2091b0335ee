"""Assign everyone to the ``@champion`` segment definitions (the daily refresh), without refitting.

A definition is fitted and registered by ``segments.build`` (``crm segments build``); a refresh only
applies it to the day's features and the day's CLV and churn scores, so segment names and thresholds
stay put from day to day and the registry gains no version per day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from crm_analytics.models import registry
from crm_analytics.models.clv.evaluation import by_customer
from crm_analytics.models.gate import champion_version, load_champions
from crm_analytics.models.segments.build import champion_scores
from crm_analytics.models.segments.membership import write_memberships
from crm_analytics.settings import Settings
from crm_analytics.tracking import configure
from crm_analytics.warehouse import Warehouse


def assign_segments(
    settings: Settings, warehouse: Warehouse, features: pd.DataFrame, as_of: date
) -> dict[str, Any]:
    """Store every customer's segment under each family's champion definition, as of ``as_of``.

    A family with no champion (its clustering was refused as unstable) is left out and said so; none
    at all is a LookupError naming the build to run."""
    client = configure(settings)
    everything = registry.segmentations()
    families = [f for f in everything if champion_version(client, f.name) is not None]
    if not families:
        names = ", ".join(f.name for f in everything)
        raise LookupError(f"{names}: no @champion definition; run `crm segments build` first")
    found, loaded = load_champions(client, families)
    features = by_customer(features)
    scores = champion_scores(settings, features)
    members = []
    result: dict[str, Any] = {"as_of": str(as_of), "scored_with": scores.attrs["versions"], "families": {}}
    for family in families:
        assert family.segmentation is not None
        segmenter = loaded[family.name].unwrap_python_model().segmenter
        inputs = scores if family.segmentation.fit_on == "scores" else features
        segments = segmenter.transform(inputs)[family.segmentation.column]
        version = found[family.name][0]
        frame = pd.DataFrame(
            {
                "customer_id": features.index.to_numpy(),
                "segment": segments.to_numpy(),
                "clv": scores["clv"].to_numpy(),
                "churn_probability": scores["churn_probability"].to_numpy(),
            }
        )
        members.append((family.key, frame, f"{family.name}/{version}"))
        sizes = frame["segment"].value_counts().sort_index()
        result["families"][family.key] = {
            "model": family.name,
            "version": version,
            "segments": {str(k): int(v) for k, v in sizes.items()},
        }
    for family in everything:
        if family not in families:
            result["families"][family.key] = {
                "absent": "no registered definition (refused as unstable, or never built): "
                "`crm segments build` fits it again"
            }
    write_memberships(warehouse, members, as_of)
    return result
