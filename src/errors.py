"""Typed errors every layer may raise and the CLI maps to exit codes (1 refused or failed, 2 bad usage).

They subclass ``ValueError`` or ``LookupError`` where that is what they are, so callers catching the
built-in kinds keep working. Messages name the field or the thing to run, never a personal value.
"""

from __future__ import annotations


class CrmError(Exception):
    """Base class; ``exit_code`` is what the ``crm`` command exits with."""

    exit_code = 1


class InvalidInputError(CrmError, ValueError):
    """The caller's input is wrong (a bad option, an unknown model name): exit 2."""

    exit_code = 2


class NotReadyError(CrmError, LookupError):
    """Something has to exist first (a feature build, a champion, a customer): exit 1."""


class RefusedError(CrmError):
    """A check refused the work (a bad batch, a promotion that does not win the gate): exit 1."""


class BusyError(CrmError):
    """Another process holds what this one needs (the DuckDB warehouse file): exit 1."""
