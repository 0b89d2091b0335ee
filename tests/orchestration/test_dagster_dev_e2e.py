"""`make orchestrate`'s command starts: `dagster dev` on the shipped instance file (telemetry off, one run
at a time) answers on 127.0.0.1 with our code location loaded, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import project_env

pytestmark = pytest.mark.e2e
SRC = Path(__file__).resolve().parents[2] / "src"
JOBS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } sensors { name } } } } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, body: dict[str, str] | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.load(response))


def test_dagster_dev_serves_the_code_location_on_loopback(isolated: Path) -> None:
    home = isolated / "data" / "dagster"
    home.mkdir(parents=True)
    shutil.copy(SRC / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = os.environ | project_env(isolated) | {"DAGSTER_HOME": str(home)}
    dagster = Path(sys.executable).parent / "dagster"
    command = [str(dagster), "dev", "-m", "crm_analytics.orchestration", "-h", "127.0.0.1", "-p", str(port)]
    log = isolated / "dagster-dev.log"  # a file, not a pipe: the daemon's log would fill a pipe and block
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        info: dict[str, object] = {}
        while time.monotonic() < deadline and process.poll() is None:
            try:
                info = get(f"http://127.0.0.1:{port}/server_info")
                break
            except OSError:
                time.sleep(1)
        assert info, "dagster dev did not answer on /server_info"
        assert "dagster_webserver_version" in info
        found: list[object] = []
        while time.monotonic() < deadline and not found:  # the code server may still be loading
            answer = get(f"http://127.0.0.1:{port}/graphql", {"query": JOBS})
            found = answer["data"]["repositoriesOrError"].get("nodes", [])  # type: ignore[index]
            time.sleep(0 if found else 1)
        assert found, "the code location did not load"
        names = {job["name"] for node in found for job in node["jobs"]}  # type: ignore[index]
        assert "daily_refresh" in names
        assert (home / "storage").is_dir() or (home / "history").is_dir()  # its storage is under data/
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # our own process group: dagster dev and its children
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "Traceback" not in log.read_text(errors="replace")
