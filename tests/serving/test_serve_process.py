"""``crm serve --workers 2`` as an operator runs it: every worker writes the one access log, and
``/metrics`` shows the whole service's counts (Prometheus multiprocess mode), whichever worker answers."""

from __future__ import annotations

import http.client
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.serving.conftest import Served

REQUESTS = 24
MAX_REQUESTS = 400


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


def wait_ready(base: str, process: subprocess.Popen[str], log: Path, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if get(f"{base}/readyz") == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail("crm serve did not get ready")


def wait_for_workers(log: Path, workers: int, seconds: float = 180.0) -> None:
    """Until every worker has finished its start-up (``/readyz`` answers as soon as one has)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.read_text().count("Application startup complete") >= workers:
            return
        time.sleep(0.5)
    pytest.fail(f"not all {workers} workers started: {log.read_text()[-3000:]}")


def metrics_counting(base: str, answered: int, seconds: float = 10.0) -> str:
    """``/metrics`` once it counts ``answered`` answers of ``/v1/models`` (a worker counts a request
    just after its answer has left, so the last one can lag the client by a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        if f'route="/v1/models",status="200"}} {float(answered)}' in metrics or time.monotonic() > deadline:
            return metrics
        time.sleep(0.2)


def start_two_workers(served: Served, port: int, service_log: Path) -> subprocess.Popen[str]:
    """``crm serve --workers 2`` on ``port`` in the served folder, its log in ``service_log``."""
    with service_log.open("w") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "crm_analytics.cli", "serve", "--workers", "2", "--port", str(port)],
            cwd=served.folder,
            env={**os.environ, **served.env},
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
        )


def sample_files(served: Served) -> list[Path]:
    folders = sorted(served.settings.data_dir.glob("metrics-*"))
    return [path for folder in folders for path in folder.glob("counter_*.db")]


@pytest.mark.slow
def test_serve_workers_share_the_access_log_and_the_metrics(served: Served, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    access_log = served.settings.access_log
    before = len(access_log.read_text().splitlines()) if access_log.exists() else 0
    service_log = tmp_path / "serve.log"
    process = start_two_workers(served, port, service_log)
    try:
        wait_ready(base, process, service_log)
        wait_for_workers(service_log, 2)
        codes: list[int] = []
        # The kernel hands connections to whichever worker accepts first; keep asking (a few
        # at a time) until both have answered, so both have written their own sample file.
        with ThreadPoolExecutor(max_workers=4) as pool:
            while len(codes) < MAX_REQUESTS and (len(codes) < REQUESTS or len(sample_files(served)) < 2):
                urls = [f"{base}/v1/models"] * 4
                codes += pool.map(get, urls, [served.keys["analyst"]] * 4)
        denied = get(f"{base}/v1/models", served.keys["marketing"])
        metrics = metrics_counting(base, len(codes))
        folders = sorted(served.settings.data_dir.glob("metrics-*"))
        metric_files = sample_files(served)
    finally:
        process.send_signal(signal.SIGTERM)  # the process this test started, by its own handle
        process.wait(timeout=60)
    errors = service_log.read_text()

    assert codes == [200] * len(codes)
    assert denied == 403
    served_total = re.search(
        r'crm_requests_total\{method="GET",route="/v1/models",status="200"\} (\S+)', metrics
    )
    assert served_total is not None
    assert float(served_total.group(1)) == len(codes)  # every worker's answers, summed
    assert len(metric_files) >= 2  # one sample file per worker
    assert not any(folder.exists() for folder in folders)  # removed when the service stops
    lines = [json.loads(line) for line in access_log.read_text().splitlines()[before:]]
    models_reads = [line for line in lines if line["route"] == "/v1/models"]
    assert len(models_reads) == len(codes) + 1
    assert {line["roles"][0] for line in models_reads} == {"analyst", "marketing"}
    assert [line["denied_scope"] for line in models_reads if line["status"] == 403] == ["models"]
    assert "GET /v1/models 200" in errors  # our request log reaches the service's log too


def worker_processes(parent: int) -> list[psutil.Process]:
    """The service's worker processes (multiprocessing also starts a resource tracker)."""
    children = psutil.Process(parent).children()
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


def workers_holding(port: int, parent: int) -> list[int]:
    """How many established connections to ``port`` each worker process holds."""
    counts = []
    for worker in worker_processes(parent):
        held = worker.net_connections(kind="tcp")
        counts.append(sum(1 for c in held if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED))
    return sorted(counts)


@pytest.mark.slow
def test_serve_spreads_keep_alive_connections_and_replaces_a_dead_worker(
    served: Served, tmp_path: Path
) -> None:
    """Four keep-alive connections opened at once end up two per worker (uvicorn's racing workers put
    all four on one); a worker killed is replaced and the service keeps answering."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    service_log = tmp_path / "serve.log"
    process = start_two_workers(served, port, service_log)
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(4)]
    try:
        wait_ready(base, process, service_log)
        wait_for_workers(service_log, 2)
        time.sleep(1)  # each worker tells the parent it has started just after logging it
        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(_ask_models(served.keys["analyst"]), connections))
        spread = workers_holding(port, process.pid)
        worker_processes(process.pid)[0].kill()
        wait_for_workers(service_log, 3)  # a replacement has started
        after = [get(f"{base}/v1/models", served.keys["analyst"]) for _ in range(6)]
    finally:
        for connection in connections:
            connection.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert statuses == [200] * 4
    assert spread == [2, 2]
    assert after == [200] * 6
    assert process.returncode == 0


def _ask_models(secret: str) -> Callable[[http.client.HTTPConnection], int]:
    def ask(connection: http.client.HTTPConnection) -> int:
        connection.request("GET", "/v1/models", headers={"Authorization": f"Bearer {secret}"})
        answer = connection.getresponse()
        answer.read()  # the connection stays open (keep-alive) for the count
        return int(answer.status)

    return ask
