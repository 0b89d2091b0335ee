"""A served demo chain: `crm run` (which ends with `crm score`) in a folder of its own, then the app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crm_analytics.cli import app as cli
from crm_analytics.serving.app import create_app
from crm_analytics.serving.booking_rules import example_booking
from crm_analytics.serving.keys import KeyStore
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore
from tests.conftest import project_env


@dataclass
class Served:
    folder: Path
    settings: Settings
    keys: dict[str, str]  # role -> secret
    env: dict[str, str]  # the CRM_* variables the folder was built with


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    folder = tmp_path_factory.mktemp("served")
    env = project_env(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name, value in env.items():
            patch.setenv(name, value)
        runner = CliRunner()
        result = runner.invoke(cli, ["run", "--customers", "400"])  # ends with `crm score`
        assert result.exit_code == 0, result.output
        settings = Settings()
    store = KeyStore(ServingStore(settings.serving_store_url).upgrade().engine, cache_ttl=0)
    keys = {
        role: store.create(f"test-{role}", [role])[1] for role in ("marketing", "booking", "analyst", "admin")
    }
    return Served(folder, settings, keys, env)


@pytest.fixture
def client(served: Served) -> Iterator[TestClient]:
    with TestClient(create_app(served.settings)) as test_client:
        yield test_client


def auth(served: Served, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.keys[role]}"}


def decide(client: TestClient, served: Served, customer_id: str | None, top_k: int = 3) -> dict[str, Any]:
    """A ``/v1/offers`` answer for the example booking (so a logged decision) for ``customer_id``."""
    body = {"customer_id": customer_id, "booking": example_booking(), "top_k": top_k}
    response = client.post("/v1/offers", json=body, headers=auth(served, "booking"))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["offers"], "the example booking has eligible offers"
    return answer
