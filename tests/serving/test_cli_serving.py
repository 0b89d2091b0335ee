"""`crm keys` from the shell: secrets shown once, never listed; demo keys replace earlier ones."""

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


def test_keys_demo_gives_one_key_per_role_and_revokes_the_previous_ones() -> None:
    first = crm("keys", "demo", "--json")[1]
    second = crm("keys", "demo", "--json")[1]
    assert set(first) == set(second) == {"marketing", "booking", "analyst", "admin"}
    keys = crm("keys", "list", "--json")[1]["keys"]
    assert sum(1 for k in keys if not k["revoked_at"]) == 4
    assert len(keys) == 8
