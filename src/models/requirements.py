"""Does this environment satisfy what a logged model was trained with? The check MLflow runs when it
loads a pyfunc, made cheap.

MLflow maps every installed distribution's files to its import names before comparing versions
(``importlib_metadata.packages_distributions``): 0.8 s a process here (2 s on a busy machine), paid by
every `crm` command and API worker that loads a champion. A model's requirements name distributions
already, so asking each one's version is enough (a millisecond).
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

log = logging.getLogger(__name__)


def unmet(requirements: list[str]) -> list[str]:
    """The requirement lines (pip format) this environment does not satisfy, each with what is installed;
    options (``-r``, ``--index-url``), comments and URLs are skipped."""
    out = []
    for line in requirements:
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        try:
            wanted = Requirement(text)
        except InvalidRequirement:
            continue
        if wanted.url or (wanted.marker is not None and not wanted.marker.evaluate()):
            continue
        try:
            installed = metadata.version(wanted.name)
        except metadata.PackageNotFoundError:
            out.append(f"{wanted} (not installed)")
            continue
        if not wanted.specifier.contains(installed, prereleases=True):
            out.append(f"{wanted} (installed: {installed})")
    return out


def warn_if_unmet(model: str, requirements_file: Path) -> list[str]:
    """Log a warning naming the model and every requirement of it this environment does not meet."""
    if not requirements_file.is_file():
        return []
    problems = unmet(requirements_file.read_text().splitlines())
    if problems:
        log.warning("%s was logged with other package versions: %s", model, "; ".join(problems))
    return problems
