"""Driving an HTTP server from one asyncio client: start it in its own process group, wait for it, send
requests back to back on keep-alive connections and time them (used by ``serving_throughput.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import numpy as np

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


def answered(response: httpx.Response) -> bool:
    return response.status_code == 200


def found_by_name(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json()["matched_by"] == "name"


async def drive(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    connections: int,
    warmup: float,
    seconds: float,
    accept: Callable[[httpx.Response], bool] = answered,
) -> Result:
    """``connections`` loops sending ``bodies`` round robin: ``warmup`` seconds, then ``seconds`` measured
    (requests started in the measured window count; the client's CPU seconds over it are taken too); an
    answer ``accept`` refuses is an error."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
        measure_from = time.perf_counter() + warmup
        end = measure_from + seconds

        async def loop(i: int) -> None:
            nonlocal errors
            while (sent := time.perf_counter()) < end:
                try:
                    response = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                    ok = accept(response)
                except httpx.HTTPError:
                    ok = False
                i += connections
                if sent >= measure_from:
                    if ok:
                        latencies.append(time.perf_counter() - sent)
                    else:
                        errors += 1

        tasks = [asyncio.create_task(loop(k)) for k in range(connections)]
        await asyncio.sleep(warmup)
        cpu = time.process_time()
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu
    return summarise(latencies, errors, seconds, cpu)


def summarise(latencies: list[float], errors: int, seconds: float, cpu: float) -> Result:
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return Result(
        requests=len(latencies),
        errors=errors,
        seconds=seconds,
        requests_per_second=round(len(latencies) / seconds, 1),
        p50_ms=round(float(np.percentile(ms, 50)), 2),
        p99_ms=round(float(np.percentile(ms, 99)), 2),
        mean_ms=round(float(ms.mean()), 2),
        client_cpu_seconds=round(cpu, 2),
    )
