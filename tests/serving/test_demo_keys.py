"""Demo keys survive: created once per role, kept in <data_dir>/demo-keys.json (0600), printed again;
only `crm keys revoke` ends one, and only that role's key is then made again. Nothing else (a second
`crm keys demo`, a new scoring snapshot, an erasure, a store upgrade) revokes or deletes a key."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from crm_analytics.cli import app as cli
from crm_analytics.errors import RefusedError
from crm_analytics.serving.app import create_app
from crm_analytics.serving.booking_rules import example_booking
from crm_analytics.serving.demo_keys import DEMO_FILE, demo_keys
from crm_analytics.serving.keys import ROLES, KeyStore
from crm_analytics.settings import load_settings
from crm_analytics.store import ServingStore
from crm_analytics.store.serving_store import Snapshot
from tests.serving.conftest import Served
from tests.test_cli import crm, runner

BOOKING = example_booking() | {"nights": 2}  # checks in 30 days from today


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    url = (
        f"sqlite:///{tmp_path / 'serving.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = ServingStore(url).upgrade().engine
    yield KeyStore(engine, cache_ttl=0)
    engine.dispose()


def secrets_of(result: dict) -> dict[str, str]:
    return {role: key["secret"] for role, key in result["keys"].items()}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_demo_keys_twice_gives_the_same_keys_and_revokes_none(store: KeyStore, tmp_path: Path) -> None:
    first = demo_keys(store, tmp_path / "data")
    saved = (tmp_path / "data" / DEMO_FILE).read_bytes()
    second = demo_keys(store, tmp_path / "data")

    assert [k.role for k in first.keys] == list(ROLES)
    assert all(k.created for k in first.keys)
    assert not any(k.created for k in second.keys)
    assert secrets_of(second.as_dict()) == secrets_of(first.as_dict())
    assert (tmp_path / "data" / DEMO_FILE).read_bytes() == saved
    listed = store.list()
    assert len(listed) == len(ROLES)
    assert all(k.active for k in listed)
    assert {k.name for k in listed} == {f"demo-{role}" for role in ROLES}


def test_demo_keys_file_is_0600_and_a_new_data_dir_0700_whatever_the_umask(
    store: KeyStore, tmp_path: Path
) -> None:
    data_dir = tmp_path / "new" / "data"
    old = os.umask(0)  # a plain open() would now make the file world-readable
    try:
        result = demo_keys(store, data_dir)
    finally:
        os.umask(old)

    assert mode(result.path) == 0o600
    assert mode(data_dir) == 0o700
    assert (
        json.loads(result.path.read_text())["booking"]["secret"]
        == result.as_dict()["keys"]["booking"]["secret"]
    )
    assert [p.name for p in data_dir.iterdir()] == [DEMO_FILE]  # no temporary file left behind


def test_demo_keys_revoked_one_is_the_only_one_made_again(store: KeyStore, tmp_path: Path) -> None:
    first = {k.role: k for k in demo_keys(store, tmp_path).keys}
    store.revoke(first["booking"].key_id)

    again = {k.role: k for k in demo_keys(store, tmp_path).keys}

    assert [role for role, k in again.items() if k.created] == ["booking"]
    assert again["booking"].secret != first["booking"].secret
    assert store.verify(first["booking"].secret) is None
    assert all(again[role].secret == first[role].secret for role in ROLES if role != "booking")
    saved = json.loads((tmp_path / DEMO_FILE).read_text())
    assert saved["booking"] == {"key_id": again["booking"].key_id, "secret": again["booking"].secret}
    assert mode(tmp_path / DEMO_FILE) == 0o600
    assert sum(k.active for k in store.list()) == len(ROLES)


def test_demo_keys_on_a_reset_store_are_made_again(store: KeyStore, tmp_path: Path) -> None:
    first = demo_keys(store, tmp_path)
    empty = KeyStore(ServingStore(f"sqlite:///{tmp_path / 'reset.db'}").upgrade().engine, cache_ttl=0)

    again = demo_keys(empty, tmp_path)

    assert all(k.created for k in again.keys)
    assert all(empty.verify(k.secret) is not None for k in again.keys)
    assert not set(secrets_of(again.as_dict()).values()) & set(secrets_of(first.as_dict()).values())


def test_demo_keys_loosened_file_is_tightened(store: KeyStore, tmp_path: Path) -> None:
    path = demo_keys(store, tmp_path).path
    path.chmod(0o644)

    demo_keys(store, tmp_path)

    assert mode(path) == 0o600


def test_demo_keys_refuse_a_file_that_is_not_theirs(store: KeyStore, tmp_path: Path) -> None:
    (tmp_path / DEMO_FILE).write_text("[1, 2]")

    with pytest.raises(RefusedError, match="not a demo keys file"):
        demo_keys(store, tmp_path)
    assert store.list() == []


def test_snapshots_erasure_and_upgrades_leave_keys_alone(store: KeyStore) -> None:
    serving = ServingStore(store.engine)
    _, secret = store.create("pms", ["booking"])
    for run in ("s1", "s2"):  # what every `crm score` (and so `crm run`) does to the store
        snapshot = Snapshot(run, datetime.now(UTC), "2025-06-30", {}, 1, [])
        row = {"customer_id": "U1", "scores": "{}", "segments": "{}", "consent": True}
        serving.write_snapshot(snapshot, [row], [], [])
    assert serving.erase(["U1"]) == 1
    serving.upgrade()

    assert store.verify(secret) is not None
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")).scalar() == 1


def test_crm_keys_demo_twice_and_a_rescore_keep_the_first_keys_working(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "served"  # a copy: the session's store keeps its own keys
    shutil.copytree(served.folder, folder)
    for name, value in served.env.items():
        monkeypatch.setenv(name, value.replace(str(served.folder), str(folder)))

    code, first, _ = crm("keys", "demo", "--json")
    assert code == 0
    code, second, _ = crm("keys", "demo", "--json")
    assert code == 0
    assert crm("score")[0] == 0  # what `crm run` does to the serving store when run again
    code, listed, _ = crm("keys", "list", "--json")

    assert code == 0
    assert secrets_of(second) == secrets_of(first)
    assert not any(key["created"] for key in second["keys"].values())
    assert Path(first["file"]) == folder / "data" / DEMO_FILE
    assert mode(Path(first["file"])) == 0o600
    assert not any(key["revoked_at"] for key in listed["keys"])
    keys = secrets_of(first)
    app = create_app(load_settings())
    with TestClient(app) as client:
        calls = {
            "marketing": client.get("/v1/segments", headers={"Authorization": f"Bearer {keys['marketing']}"}),
            "analyst": client.get("/v1/models", headers={"Authorization": f"Bearer {keys['analyst']}"}),
            "booking": client.post(
                "/v1/offers",
                json={"guest": {"email": "nobody@nowhere.example"}, "booking": BOOKING},
                headers={"X-API-Key": keys["booking"]},
            ),
        }
        assert {role: r.status_code for role, r in calls.items()} == dict.fromkeys(calls, 200)
        assert app.state.key_store.verify(keys["admin"]) is not None  # no admin route to call


def test_crm_keys_demo_prints_the_kept_keys_again_and_a_new_one_for_a_revoked_key() -> None:
    code, first, _ = crm("keys", "demo", "--json")
    assert code == 0
    assert crm("keys", "revoke", first["keys"]["analyst"]["key_id"])[0] == 0

    result = runner.invoke(cli, ["keys", "demo"])

    assert result.exit_code == 0, result.stderr
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert set(lines) == set(ROLES)
    assert all(lines[role] == [first["keys"][role]["secret"]] for role in ROLES if role != "analyst")
    assert lines["analyst"][1] == "(new)"
    assert lines["analyst"][0] != first["keys"]["analyst"]["secret"]
    assert f"kept in {Path('data') / DEMO_FILE}" in result.stdout
