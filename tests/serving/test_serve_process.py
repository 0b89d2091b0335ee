"""``crm serve --workers 2`` as an operator runs it: every worker writes the one access log, and
``/metrics`` shows the whole service's counts (Prometheus multiprocess mode), whichever worker answers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.serving.conftest import Served

REQUESTS = 24


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, secret: str | None = None) -> int:
    """One request on a connection of its own (so the kernel spreads them over the workers)."""
    headers = {"Authorization": f"Bearer {secret}", "Connection": "close"} if secret else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def wait_ready(base: str, process: subprocess.Popen[str], seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        try:
            if get(f"{base}/readyz") == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail("crm serve did not get ready")


@pytest.mark.slow
def test_serve_workers_share_the_access_log_and_the_metrics(served: Served) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    access_log = served.settings.access_log
    before = len(access_log.read_text().splitlines()) if access_log.exists() else 0
    process = subprocess.Popen(
        [sys.executable, "-m", "crm_analytics.cli", "serve", "--workers", "2", "--port", str(port)],
        cwd=served.folder,
        env={**os.environ, **served.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(base, process)
        codes = [get(f"{base}/v1/models", served.keys["analyst"]) for _ in range(REQUESTS)]
        denied = get(f"{base}/v1/models", served.keys["marketing"])
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        folders = sorted(served.settings.data_dir.glob("metrics-*"))
        metric_files = [p for folder in folders for p in folder.glob("counter_*.db")]
    finally:
        process.send_signal(signal.SIGTERM)  # the process this test started, by its own handle
        _, errors = process.communicate(timeout=60)

    assert codes == [200] * REQUESTS
    assert denied == 403
    served_total = re.search(
        r'crm_requests_total\{method="GET",route="/v1/models",status="200"\} (\S+)', metrics
    )
    assert served_total is not None
    assert float(served_total.group(1)) == REQUESTS  # every worker's answers, summed
    assert len(metric_files) >= 2  # one sample file per worker
    assert not any(folder.exists() for folder in folders)  # removed when the service stops
    lines = [json.loads(line) for line in access_log.read_text().splitlines()[before:]]
    models_reads = [line for line in lines if line["route"] == "/v1/models"]
    assert len(models_reads) == REQUESTS + 1
    assert {line["roles"][0] for line in models_reads} == {"analyst", "marketing"}
    assert [line["denied_scope"] for line in models_reads if line["status"] == 403] == ["models"]
    assert "GET /v1/models 200" in errors  # our request log reaches the service's log too
