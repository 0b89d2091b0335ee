"""The model families crm-analytics trains, promotes, scores and serves: one entry per family.

Training (``crm train``), the promotion gate, batch scoring (local and Spark), the segments build and the
API all read this list; adding a family is one module defining its :class:`ModelFamily` plus one entry
here.
"""

from __future__ import annotations

from crm_analytics.errors import InvalidInputError
from crm_analytics.models.churn.family import FAMILY as CHURN
from crm_analytics.models.clv.bgbb_family import FAMILY as BGBB
from crm_analytics.models.clv.family import FAMILY as CLV
from crm_analytics.models.family import ModelFamily
from crm_analytics.models.offers.family import FAMILY as OFFERS
from crm_analytics.models.segments.family import BEHAVIOUR, RFM, VALUE_RISK

FAMILIES: tuple[ModelFamily, ...] = (CLV, CHURN, OFFERS, BGBB, RFM, VALUE_RISK, BEHAVIOUR)


def family(key_or_name: str) -> ModelFamily:
    """The family called ``key_or_name`` (``clv`` or ``crm-clv``); a ValueError listing the choices."""
    for candidate in FAMILIES:
        if key_or_name in (candidate.key, candidate.name):
            return candidate
    choices = ", ".join(f"{f.key} ({f.name})" for f in FAMILIES)
    raise InvalidInputError(f"model: expected one of {choices}, got {key_or_name!r}")


def trainable() -> tuple[ModelFamily, ...]:
    """Families ``crm train`` trains one by one (segments are built together)."""
    return tuple(f for f in FAMILIES if f.train is not None)


def scored() -> tuple[ModelFamily, ...]:
    """Families whose champions score every customer in a batch."""
    return tuple(f for f in FAMILIES if f.score is not None)


def served() -> tuple[ModelFamily, ...]:
    """Families whose champions the API loads."""
    return tuple(f for f in FAMILIES if f.served)


def segmentations() -> tuple[ModelFamily, ...]:
    """The segment families, in build order."""
    return tuple(f for f in FAMILIES if f.segmentation is not None)
