"""Suppression of erased customers: a keyed one-way hash per erased subject, checked at ingest.

When a customer is erased (``crm erase``), every source account and transaction of theirs is recorded in
``erasure_suppressions`` as ``HMAC-SHA256(key, [kind, source, id])``: no ids, no personal data. A later
ingest hashes the same subjects of each incoming row and drops matches before validation, so an erased
person's rows are neither stored nor quarantined.

The hash is keyed because source ids are short and sequential (``G0000042``): an unsalted SHA-256 of
them could be reversed by hashing every possible id. The key is ``CRM_ERASURE_KEY`` or, when unset, a
random key created once in ``erasure_key_path(settings)`` (mode 0600): ``CRM_ERASURE_KEY_FILE``, else the
user's config folder (``~/.config/crm-analytics/erasure.key`` on Linux), kept out of the data folder so a
copy of the data does not carry the key that reverses its hashes; a key an earlier release created in
``<data_dir>/erasure.key`` is still used there (``key_in_data_folder`` says how to move it). Back it up
apart from the warehouse's backups: without it the recorded hashes can no longer be matched. Every host
that ingests into the same warehouse needs the same key, so set ``CRM_ERASURE_KEY`` in production. A
missing or different key is an error at ingest, never a silent miss: only an erasure creates a key, and
the table holds a check hash of the key it was recorded with.

Subjects are ``account`` (a source system's customer id: ``customer_records.source_customer_id`` and
the ``customer_id`` of transactions and the offer log) and ``transaction`` (a source's
``transaction_id``: transactions, their line items and offer-log rows).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd
import platformdirs

from crm_analytics.settings import Settings
from crm_analytics.warehouse import Execute, Warehouse

Kind = Literal["account", "transaction"]
TABLE = "erasure_suppressions"
COLUMNS = {"subject_hash": "TEXT", "kind": "TEXT", "erased_at": "TIMESTAMP"}
REASON = "erased on request (suppressed)"
KEY_FILE = "erasure.key"
APP_NAME = "crm-analytics"  # the per-user config folder's name
KEY_CHECK = "key_check"  # the kind of the row that identifies the key the table was recorded with

# per raw table: which columns name a subject (always together with the row's ``source``)
SUBJECT_COLUMNS: dict[str, tuple[tuple[Kind, str], ...]] = {
    "customer_records": (("account", "source_customer_id"),),
    "transactions": (("account", "customer_id"), ("transaction", "transaction_id")),
    "transaction_items": (("transaction", "transaction_id"),),
    "offer_log": (("account", "customer_id"), ("transaction", "transaction_id")),
}
_ROWS_PER_INSERT = 500


def erasure_key_path(settings: Settings) -> Path:
    """The key file: ``CRM_ERASURE_KEY_FILE``; else ``<data_dir>/erasure.key`` if an earlier release
    created it there; else ``erasure.key`` in the user's config folder (``platformdirs``)."""
    if settings.erasure_key_file is not None:
        return settings.erasure_key_file.expanduser()
    legacy = _data_folder_key(settings)
    return legacy if legacy.exists() else _user_config_key()


def key_in_data_folder(settings: Settings) -> str | None:
    """How to move a key file that still lives in the data folder (None when it does not)."""
    legacy = _data_folder_key(settings)
    if settings.erasure_key is not None or erasure_key_path(settings) != legacy:
        return None
    target = _user_config_key()
    return (
        f"the erasure key is in the data folder ({legacy}), so every copy of the data carries the key "
        f"to its hashes; move it out: mkdir -p -m 700 {target.parent} && mv {legacy} {target} "
        "(or set CRM_ERASURE_KEY_FILE, or CRM_ERASURE_KEY on every host)"
    )


def _data_folder_key(settings: Settings) -> Path:
    """Where an earlier release kept the key: in the data folder."""
    return Path(settings.data_dir) / KEY_FILE


def _user_config_key() -> Path:
    """The default key file: in the user's config folder, outside the data folder."""
    return platformdirs.user_config_path(APP_NAME) / KEY_FILE


def erasure_key(settings: Settings, *, create: bool = True) -> bytes:
    """The HMAC key: ``CRM_ERASURE_KEY``, else the file ``erasure_key_path(settings)`` (created once,
    mode 0600, unless ``create`` is false: then a missing file is an error)."""
    if settings.erasure_key is not None:
        key = settings.erasure_key.get_secret_value().encode()
        if not key.strip():
            raise ValueError("CRM_ERASURE_KEY: must not be empty")
        return key
    path = erasure_key_path(settings)
    if not path.exists() and not create:
        raise LookupError(
            f"{path}: no erasure key, but the warehouse holds erasure suppressions; "
            "set CRM_ERASURE_KEY or CRM_ERASURE_KEY_FILE, or restore the key file used by `crm erase`"
        )
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    key = path.read_bytes().strip()
    if not key:
        raise ValueError(f"{path}: the erasure key file is empty; restore it from a backup")
    return key


def subject_hash(key: bytes, kind: Kind, source: str, subject_id: str) -> str:
    """The keyed one-way hash of one subject (hex)."""
    message = json.dumps([kind, source.strip(), subject_id.strip()], ensure_ascii=False)
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def key_check(key: bytes) -> str:
    """A hash that identifies the key without revealing it."""
    return hmac.new(key, b"crm-analytics erasure key check", hashlib.sha256).hexdigest()


def record_suppressions(
    execute: Execute,
    key: bytes,
    subjects: Iterable[tuple[Kind, str, str]],
    erased_at: datetime | None = None,
) -> int:
    """Record (kind, source, id) subjects inside the caller's transaction; idempotent.

    Returns how many distinct subjects are now suppressed by this call (new or already recorded).
    """
    erased_at = erased_at or datetime.now(UTC).replace(tzinfo=None)
    digests = sorted({(subject_hash(key, kind, source, sid), kind) for kind, source, sid in subjects})
    rows = [(key_check(key), KEY_CHECK), *digests] if digests else []
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        values = ", ".join(["(?, ?, ?)"] * len(chunk))
        params = [value for digest, kind in chunk for value in (digest, kind, erased_at)]
        execute(f'INSERT INTO "{TABLE}" VALUES {values} ON CONFLICT DO NOTHING', params)
    return len(digests)


@dataclass(frozen=True)
class Suppressions:
    """The recorded hashes and the key to compare incoming rows with; load once per batch."""

    key: bytes
    hashes: frozenset[str]


def load_suppressions(warehouse: Warehouse, settings: Settings) -> Suppressions | None:
    """The warehouse's suppressions, or None when nobody was erased (so ingest skips the check).

    Raises LookupError when the key is missing or is not the one the suppressions were recorded with.
    """
    if not warehouse.has_table(TABLE):
        return None
    hashes = frozenset(warehouse.fetch(f'SELECT subject_hash FROM "{TABLE}"')["subject_hash"].astype(object))
    if not hashes:
        return None
    key = erasure_key(settings, create=False)
    if key_check(key) not in hashes:
        raise LookupError(
            f"{TABLE}: recorded with another erasure key; set CRM_ERASURE_KEY (or restore "
            f"{erasure_key_path(settings)}) to the key `crm erase` used"
        )
    return Suppressions(key, hashes)


def suppressed_mask(frame: pd.DataFrame, table: str, suppressions: Suppressions) -> pd.Series:
    """True for each raw row of ``table`` whose account or transaction was erased.

    Works on raw chunks (column names and values as read: names matched case-insensitively, values
    stripped); each distinct (source, id) pair is hashed once. Rows without a source never match.
    """
    mask = pd.Series(False, index=frame.index)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "source" not in columns or not suppressions.hashes:
        return mask
    for kind, name in SUBJECT_COLUMNS.get(table, ()):
        if name not in columns:
            continue
        pairs = pd.DataFrame(
            {"source": frame[columns["source"]].to_numpy(), "id": frame[columns[name]].to_numpy()},
            index=frame.index,
            dtype=object,
        )
        distinct = pairs.dropna().drop_duplicates()
        erased = [
            subject_hash(suppressions.key, kind, str(source), str(sid)) in suppressions.hashes
            for source, sid in distinct.itertuples(index=False, name=None)
        ]
        hits = distinct[erased]
        if len(hits):
            mask |= pd.MultiIndex.from_frame(pairs).isin(pd.MultiIndex.from_frame(hits))
    return mask
