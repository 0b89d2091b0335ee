"""Demo API keys for trying the service: one per role, created once and kept in
``<data_dir>/demo-keys.json`` so ``crm keys demo`` (the end of ``make run``) prints the same secrets every
time instead of replacing keys already handed out.

The file holds the secrets in clear (that is its point) and is only ever written with mode 0600: a new
version is written to a fresh ``mkstemp`` file (created 0600) beside it and moved over it, so no reader
ever sees it world-readable or half written. The store keeps only the keys' hashes, as for any key. A demo
key stays until ``crm keys revoke`` revokes it (or the store is reset); the next ``demo_keys`` call then
creates a new key for that role alone and rewrites the file. Nothing here revokes a key.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_analytics.errors import RefusedError
from crm_analytics.serving.keys import ROLES, KeyStore

DEMO_FILE = "demo-keys.json"
NAME_PREFIX = "demo-"


@dataclass(frozen=True)
class DemoKey:
    """One role's demo key; ``created`` when this call made it (first time, or the old one was revoked)."""

    role: str
    key_id: str
    secret: str
    created: bool


@dataclass(frozen=True)
class DemoKeys:
    """The demo keys, one per role in ``ROLES`` order, and the file that keeps them."""

    path: Path
    keys: tuple[DemoKey, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "keys": {
                k.role: {"key_id": k.key_id, "secret": k.secret, "created": k.created} for k in self.keys
            },
        }


def demo_keys(store: KeyStore, data_dir: Path) -> DemoKeys:
    """The demo key of every role: the saved one while it is still active in ``store``, else a new one
    (saved). Running it again changes nothing; it never revokes a key."""
    path = Path(data_dir) / DEMO_FILE
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(path.parent):
        saved = _read(path)
        keys = tuple(_kept(store, role, saved.get(role)) or _new(store, role) for role in ROLES)
        if any(k.created for k in keys) or set(saved) != set(ROLES):
            _write(path, {k.role: {"key_id": k.key_id, "secret": k.secret} for k in keys})
        elif stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)  # someone loosened it: secrets are for the owner only
    return DemoKeys(path, keys)


def _kept(store: KeyStore, role: str, entry: Any) -> DemoKey | None:
    """The saved key of ``role`` if the store still accepts its secret for the same key and role."""
    if not isinstance(entry, dict) or not isinstance(entry.get("secret"), str):
        return None
    key = store.verify(entry["secret"])
    if key is None or key.key_id != entry.get("key_id") or key.roles != (role,):
        return None
    return DemoKey(role, key.key_id, entry["secret"], created=False)


def _new(store: KeyStore, role: str) -> DemoKey:
    key, secret = store.create(NAME_PREFIX + role, [role])
    return DemoKey(role, key.key_id, secret, created=True)


def _read(path: Path) -> dict[str, Any]:
    """The saved keys by role ({} when there is no file yet); a file that is not ours is refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        saved = json.loads(text)
    except ValueError:
        saved = None
    if not isinstance(saved, dict):
        raise RefusedError(f"{path}: not a demo keys file; move it away and run `crm keys demo` again")
    return saved


def _write(path: Path, saved: dict[str, Any]) -> None:
    """Replace ``path`` atomically by a file created with mode 0600 (``mkstemp``) in the same folder."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(saved, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder itself, so two ``crm keys demo`` at once make one set."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing drops the lock
