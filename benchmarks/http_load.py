"""Driving an HTTP server with wrk: start the server in its own process group, wait for it, send
requests back to back on keep-alive connections and time them (used by ``serving_throughput.py``).

wrk (C, epoll) is the load generator because the client shares the machine's two cores with the server:
an asyncio client in Python (httpx2) spent 4.5 CPU seconds per 10 s run against ``/v1/offers``, a
quarter of the machine, where wrk spends 0.7-1.0 for the same requests."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Result:
    """One target's measured window."""

    requests: int
    errors: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    client_cpu_seconds: float


# --- servers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    """Run ``command`` in a process group of its own until the block ends; wait for ``ready_url``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(ready_url, process, log)
        yield
    finally:
        stop(process)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"{url}: not ready after {seconds:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (its workers with it); SIGKILL what is left after 30 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- load ------------------------------------------------------------------------------------------

WRK_SCRIPT = Path(__file__).with_name("wrk_post.lua")
FOUND_BY_NAME = '"matched_by":"name"'  # in an answer that recognised the guest by name (compact JSON)


def wrk_path() -> str:
    """wrk (Debian's package, ``make bench-tools``), or SystemExit with one line saying how to get it."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `make bench-tools` installs it (apt-get, as root)")
    return found


def drive(
    url: str,
    bodies: list[bytes],
    authorization: str | None,
    connections: int,
    warmup: float,
    seconds: float,
    must_hold: str | None = None,
) -> Result:
    """wrk (one thread, ``connections`` keep-alive connections) POSTs ``bodies`` round robin back to
    back: ``warmup`` seconds unmeasured, then ``seconds`` measured. An answer other than 200, or whose
    body lacks ``must_hold``, is an error; so is a socket error. wrk's latency figures include the
    refused answers' (a run with errors says so in ``errors``). The client's CPU seconds over the
    measured run are taken from the kernel's accounting of finished children."""
    with tempfile.TemporaryDirectory(prefix="crm-wrk-") as folder:
        bodies_file = Path(folder) / "bodies.txt"
        bodies_file.write_bytes(b"".join(body.replace(b"\n", b" ") + b"\n" for body in bodies))
        env = {"PATH": os.environ.get("PATH", "")} | (
            {"BENCH_AUTHORIZATION": authorization} if authorization else {}
        )

        def run(duration: float) -> dict[str, float]:
            command = [
                wrk_path(), "-t1", f"-c{connections}", f"-d{max(duration, 1):.0f}s", "--timeout", "30s",
                "-s", str(WRK_SCRIPT), url, "--", str(bodies_file), *([must_hold] if must_hold else []),
            ]  # fmt: skip
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not done.stdout.strip():
                raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
            return json.loads(done.stdout.strip().splitlines()[-1])

        if warmup > 0:
            run(warmup)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        measured = run(seconds)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return summarise(measured, cpu)


def summarise(measured: dict[str, float], cpu: float) -> Result:
    """A Result from the JSON line ``wrk_post.lua`` prints (latencies in microseconds)."""
    seconds = measured["duration_us"] / 1e6
    errors = int(measured["refused"] + measured["socket_errors"])
    answered = int(measured["completed"] - measured["refused"])
    return Result(
        requests=answered,
        errors=errors,
        seconds=round(seconds, 2),
        requests_per_second=round(answered / seconds, 1),
        p50_ms=round(measured["p50_us"] / 1000, 2),
        p99_ms=round(measured["p99_us"] / 1000, 2),
        mean_ms=round(measured["mean_us"] / 1000, 2),
        max_ms=round(measured["max_us"] / 1000, 2),
        client_cpu_seconds=round(cpu, 2),
    )
