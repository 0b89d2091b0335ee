"""`crm keys` from the shell: secrets shown once, never listed; demo keys kept (see test_demo_keys.py)."""

from __future__ import annotations

from tests.test_cli import crm


def test_keys_create_list_revoke() -> None:
    code, created, _ = crm("keys", "create", "pms-london", "--role", "booking", "--json")
    assert code == 0
    assert created["secret"].startswith("crm_")
    code, listed, _ = crm("keys", "list", "--json")
    assert code == 0
    assert [k["key_id"] for k in listed["keys"]] == [created["key_id"]]
    assert created["secret"] not in str(listed)
    assert crm("keys", "revoke", created["key_id"])[0] == 0
    assert crm("keys", "list", "--json")[1]["keys"][0]["revoked_at"]
    code, _, stderr = crm("keys", "revoke", "k_00000000")
    assert code == 1
    assert "unknown API key id" in stderr


def test_keys_create_names_a_bad_role() -> None:
    code, _, stderr = crm("keys", "create", "x", "--role", "root")
    assert code == 2
    assert "role" in stderr


def test_keys_demo_gives_one_key_per_role_and_revokes_none() -> None:
    first = crm("keys", "demo", "--json")[1]
    second = crm("keys", "demo", "--json")[1]
    assert set(first["keys"]) == set(second["keys"]) == {"marketing", "booking", "analyst", "admin"}
    assert second == first | {"keys": {r: k | {"created": False} for r, k in first["keys"].items()}}
    keys = crm("keys", "list", "--json")[1]["keys"]
    assert len(keys) == 4
    assert not any(k["revoked_at"] for k in keys)
