"""The house rules, checked from the code: imports follow the data flow and modules stay small.

Flow (a package may import from the ones before it, never after): datasets -> ingest -> profiles ->
features -> models -> store -> monitoring -> jobs -> serving, cli. Shared by all: settings, errors,
tracking, the warehouse connection and migrations, and the raw-input contracts. ``orchestration``
(the Dagster code location) sits beside cli and calls the jobs only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "crm_analytics"
SHARED = {"settings", "errors", "tracking", "warehouse", "ingest.contracts", "ingest.currencies"}
FLOW = [
    "datasets",
    "ingest",
    "profiles",
    "features",
    "models",
    "store",
    "monitoring",
    "jobs",
    "serving",
    "cli",
    "orchestration",
]
ONLY = {"orchestration": {"jobs"}}  # a package that may import these layers (and the shared modules) only
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int | None:
    """The module's place in the flow (None: shared, or the package root)."""
    if any(module == s or module.startswith(s + ".") for s in SHARED) or not module:
        return None
    return FLOW.index(module.split(".")[0])


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every crm_analytics import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            base = node.module.removeprefix(PACKAGE).lstrip(".")
            found += [(node.lineno, f"{base}.{a.name}".strip(".")) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name.removeprefix(PACKAGE).lstrip("."))
                for a in node.names
                if a.name.startswith(PACKAGE)
            ]
    return found


def resolve(name: str) -> str:
    """``models.registry.FAMILIES`` -> ``models.registry``: the longest prefix that is a module."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = SRC.joinpath(*parts[:end])
        if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
            return ".".join(parts[:end])
    return name


MODULES = sorted(SRC.rglob("*.py"))


def test_every_module_is_in_a_known_layer() -> None:
    unknown = [
        str(p) for p in MODULES if module_name(p) and module_name(p).split(".")[0] not in {*FLOW, *SHARED}
    ]
    assert unknown == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_flow(path: Path) -> None:
    mine = layer(module_name(path))
    against = []
    for line, name in imports(path):
        target = resolve(name)
        theirs = layer(target)
        if theirs is None:
            continue
        allowed = ONLY.get(module_name(path).split(".")[0])
        outside = allowed is not None and target.split(".")[0] not in allowed | {
            module_name(path).split(".")[0]
        }
        if mine is None or theirs > mine or outside:
            against.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert against == []


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_api_reads_only_the_serving_store() -> None:
    """DuckDB gives a file to one writer process: the API (many workers, always up) must never hold the
    warehouse; the jobs write what it serves into the serving store."""
    serving = [p for p in MODULES if module_name(p).startswith("serving")]
    found = [
        f"{p.relative_to(SRC)}:{line} imports {name}"
        for p in serving
        for line, name in imports(p)
        if name.split(".")[0] in {"warehouse", "jobs"}
    ]
    assert serving
    assert found == []
