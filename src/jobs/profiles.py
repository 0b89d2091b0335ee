"""Unified customers: link records across sources into profiles, show one, look one up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crm_analytics.jobs.common import open_reader, open_warehouse
from crm_analytics.profiles.build import ProfileBuild, build_profiles
from crm_analytics.profiles.linkage import DEFAULT_THRESHOLD
from crm_analytics.profiles.lookup import Match, ProfileIndex
from crm_analytics.profiles.show import customer_profile
from crm_analytics.settings import Settings


def build(
    settings: Settings,
    threshold: float = DEFAULT_THRESHOLD,
    truth: Path | None = None,
    incremental: bool = False,
) -> ProfileBuild:
    """Link customer records across sources, survive one profile per customer, log the linkage (scored
    against the demo's true identities when ``truth`` is its truth folder). ``incremental``: re-link
    only the customers new or changed records touch, with the stored linkage model."""
    with open_warehouse(settings) as warehouse:
        return build_profiles(
            warehouse, settings, threshold=threshold, truth_dir=truth, incremental=incremental
        )


def show(settings: Settings, customer_id: str) -> dict[str, Any]:
    """One customer: surviving fields with their source, service facts, linked records, conflicts (from
    the published copy)."""
    with open_reader(settings) as warehouse:
        return customer_profile(warehouse, customer_id)


def lookup(settings: Settings, details: dict[str, str], country: str | None = None) -> list[Match]:
    """Customers matching an e-mail, a phone (national numbers read in ``country``), or a name plus
    another detail (most confident first; from the published copy)."""
    with open_reader(settings) as warehouse:
        return ProfileIndex.load(warehouse).lookup(details, country=country)
