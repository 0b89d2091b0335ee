"""The models the API serves: the ``@champion`` of every served family in the registry, loaded and
warmed up, swapped as a whole when an alias moves.

:class:`ModelHolder` keeps one immutable :class:`ServedModels`; a request takes a reference at its start,
so a reload in the background never changes the models under a running request. ``reload_if_moved``
compares the aliases with the ones loaded last and loads a moved champion completely (and warms it up)
before swapping; a failed load is logged and the old models keep serving.

A champion that does not load (its artifacts gone, say) does not take the service down: that family
falls back to its previously promoted version, with a logged error, and ``/readyz`` reports which
versions serve and whether they are the current aliases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from crm_analytics.errors import InvalidInputError
from crm_analytics.models import registry
from crm_analytics.models.gate import champion_versions, load_version
from crm_analytics.models.offers.acceptance import AcceptanceModel
from crm_analytics.models.offers.family import FAMILY as OFFERS

log = logging.getLogger("crm_analytics.serving")


class MissingFeaturesError(InvalidInputError):
    """Inline rows lack columns a champion reads (the message names them)."""


@dataclass(frozen=True)
class ServedModels:
    """One consistent set of champions: every served family's pyfunc by registered name."""

    versions: dict[str, str]
    run_ids: dict[str, str]
    loaded_at: datetime
    pyfuncs: dict[str, Any]
    inputs: dict[str, list[str]] = field(default_factory=dict)  # name -> its signature's input columns
    aliases: dict[str, str] = field(default_factory=dict)  # name -> @champion's version when loaded

    @property
    def fallbacks(self) -> dict[str, str]:
        """name -> the @champion version that did not load (an earlier version serves instead)."""
        return {name: alias for name, alias in self.aliases.items() if self.versions.get(name) != alias}

    @property
    def offers_full(self) -> AcceptanceModel:
        full: AcceptanceModel = self.pyfuncs[OFFERS.name].unwrap_python_model().full
        return full

    @property
    def offers_context(self) -> AcceptanceModel:
        context: AcceptanceModel = self.pyfuncs[OFFERS.name].unwrap_python_model().context
        return context

    def header(self) -> str:
        """``crm-clv=3,crm-churn=2,crm-offers=1``: the versions a response was computed with."""
        return versions_header(self.versions)

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Every served, scored family's outputs for feature rows: a MissingFeaturesError naming the inputs
        (checked for every family first), a ValueError when a model refuses a value."""
        families = [f for f in registry.scored() if f.score is not None and f.name in self.pyfuncs]
        for family in families:
            missing = [c for c in self.inputs[family.name] if c not in frame.columns]
            if missing:
                raise MissingFeaturesError(f"features missing for {family.name}: {', '.join(missing[:5])}")
        parts = [
            family.score(self.pyfuncs[family.name], frame[self.inputs[family.name]]) for family in families
        ]
        return pd.concat(parts, axis=1)


def versions_header(versions: dict[str, str]) -> str:
    """The ``X-Model-Versions`` value: ``name=version`` pairs in name order."""
    return ",".join(f"{name}={version}" for name, version in sorted(versions.items()))


def load_models(client: MlflowClient) -> ServedModels:
    """Load and warm up the served champions (one prediction each), so a ready service answers fast; a
    champion that does not load or fails its warm-up is replaced by its family's previously promoted
    version (logged). A LookupError when a family has no champion, or no version of it loads."""
    aliases = champion_versions(client, registry.served())
    registry_uri = mlflow.get_registry_uri()
    chosen, loaded = {}, {}
    for name, champion in aliases.items():
        for version, run_id in (champion, *earlier_champions(client, name, champion[0])):
            try:
                loaded[name] = load_version(registry_uri, name, version, run_id)
                warm_up(name, loaded[name])
            except Exception as exc:  # any failure to load or predict: try the version before
                log.error("%s version %s does not load (%s)", name, version, type(exc).__name__)
                continue
            chosen[name] = (version, run_id)
            if version != champion[0]:
                log.error("%s: version %s serves instead of the champion %s", name, version, champion[0])
            break
        else:
            raise LookupError(f"{name}: neither the champion v{champion[0]} nor an earlier version loads")
    models = ServedModels(
        versions={name: v for name, (v, _) in chosen.items()},
        run_ids={name: run for name, (_, run) in chosen.items()},
        loaded_at=datetime.now(UTC).replace(tzinfo=None),
        pyfuncs=loaded,
        inputs={
            name: list(model.metadata.get_input_schema().input_names()) for name, model in loaded.items()
        },
        aliases={name: version for name, (version, _) in aliases.items()},
    )
    return models


def earlier_champions(client: MlflowClient, name: str, version: str) -> list[tuple[str, str]]:
    """The versions of ``name`` older than ``version`` that were once promoted (a ``promotion`` tag),
    newest first, as (version, run id)."""
    found = client.search_model_versions(f"name = '{name}'")
    promoted = [v for v in found if "promotion" in (v.tags or {}) and int(v.version) < int(version)]
    return [(str(v.version), str(v.run_id)) for v in sorted(promoted, key=lambda v: -int(v.version))]


def warm_up(name: str, pyfunc: Any) -> None:
    """One prediction through a scoring model, or the offer models compiled for bookings: a broken
    artifact fails here, not on a guest's request."""
    if name == OFFERS.name:
        model = pyfunc.unwrap_python_model()
        model.full.compiled()
        model.context.compiled()
        return
    family = next((f for f in registry.scored() if f.name == name), None)
    if family is not None and family.score is not None:
        inputs = list(pyfunc.metadata.get_input_schema().input_names())
        family.score(pyfunc, pd.DataFrame([dict.fromkeys(inputs, 1.0)]))


class ModelHolder:
    """The current champions, replaced as a whole when an alias moves."""

    def __init__(self, client: MlflowClient, on_change: Callable[[], None] | None = None) -> None:
        self.client = client
        self.on_change = on_change  # called once a set is loaded (``serving/heap.py``)
        self.current: ServedModels | None = None
        self.last_error: str | None = None
        self.aliases: dict[str, str] = {}  # the @champion versions at the last look

    def load(self) -> ServedModels:
        self.current = load_models(self.client)
        self.aliases = dict(self.current.aliases)
        self.last_error = _not_loaded(self.current)
        if self.on_change is not None:
            self.on_change()
        return self.current

    def reload_if_moved(self) -> bool:
        """Load the champions again if any alias points elsewhere than when they were loaded, or an
        earlier version serves for one that did not load (a passing artifact-store failure heals);
        True when a different set now serves (``on_change`` is then called)."""
        try:
            found = champion_versions(self.client, registry.served())
            self.aliases = {name: version for name, (version, _) in found.items()}
            current = self.current  # a fallback serving is tried again at every check
            if current is not None and not current.fallbacks and current.aliases == self.aliases:
                return False
            loaded = load_models(self.client)
            if current is not None and _same_set(loaded, current):
                self.last_error = _not_loaded(current)
                return False  # the same fallback again: the set in hand stays (its heap is settled)
            self.current = loaded
            self.last_error = _not_loaded(loaded)
        except Exception as exc:  # keep serving the loaded models
            self.last_error = type(exc).__name__
            log.error("model reload failed (%s); the loaded models keep serving", type(exc).__name__)
            return False
        if self.on_change is not None:
            self.on_change()
        return True


def _same_set(loaded: ServedModels, current: ServedModels) -> bool:
    """Whether a new load gave the versions and aliases in hand (a fallback tried again, failing again)."""
    return (loaded.versions, loaded.aliases) == (current.versions, current.aliases)


def _not_loaded(models: ServedModels) -> str | None:
    """What to report when a champion did not load (an earlier version serving), else None."""
    if not models.fallbacks:
        return None
    return ", ".join(f"{n} v{v}" for n, v in sorted(models.fallbacks.items())) + " did not load"
