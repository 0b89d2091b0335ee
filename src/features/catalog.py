"""The feature catalog: every output column, what it means, its type and the source columns it reads.

Feature families declare their columns here; ``docs/features.md`` is generated from this list
(``crm features catalog``) and a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """One column of the feature table. ``<x>`` in a name stands for each value found at training time."""

    name: str
    description: str
    dtype: str
    sources: tuple[str, ...]
    family: str


CATALOG: list[Feature] = []


def declare(family: str, *features: tuple[str, str, str, tuple[str, ...]]) -> list[str]:
    """Register a family's features; returns their names (the family's output columns)."""
    declared = [
        Feature(name, description, dtype, sources, family) for name, description, dtype, sources in features
    ]
    CATALOG.extend(declared)
    return [f.name for f in declared]


def catalog_markdown() -> str:
    """The catalog as a Markdown table, grouped by family."""
    lines = [
        "# Feature catalog",
        "",
        "Generated from `src/features/` by `crm features catalog --out docs/features.md`: do not edit.",
        "All features are computed as of a cutoff date from data recorded on or before it.",
        "",
        "| family | feature | type | description | source columns |",
        "|---|---|---|---|---|",
    ]
    for f in CATALOG:
        lines.append(f"| {f.family} | `{f.name}` | {f.dtype} | {f.description} | {', '.join(f.sources)} |")
    return "\n".join(lines) + "\n"
