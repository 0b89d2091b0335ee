"""``crm serve --workers N``: one process accepts the connections, the workers serve them.

uvicorn's own supervisor lets its workers race to accept on one shared socket, and the kernel wakes
the waiter that slept last. In ``benchmarks/serving_throughput.py`` all four keep-alive connections
landed on one of the two workers in every run (``ss -tnp``): the other worker served nobody and
``/v1/offers`` queued four deep on one core. Here the parent process accepts every connection and
hands it (``SCM_RIGHTS`` over a Unix socket pair) to the started worker with the fewest open
connections. Node's ``cluster`` module does the same by default, for the same reason.

A worker reports to the parent when it has started, when it begins to stop, and every tenth of a
second (when it changed) how many connections it holds and how many it has been handed, so a lost
report or a connection that closed unnoticed cannot skew the counts for long. The parent replaces a
worker that dies after it started (its connections die with it; a worker that dies while starting
stops the service, exit 1, as a broken deployment should), survives a failed ``accept`` (a client's
reset; out of descriptors: it pauses a moment), and on SIGTERM or SIGINT stops accepting, lets every
worker finish its requests (up to the graceful timeout) and returns. It sets ``TCP_NODELAY`` on each
connection itself (a handed socket gets no server's defaults). No TLS here: the API listens on
loopback behind the operator's proxy (``config.ssl`` is not applied).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

from crm_analytics.errors import CrmError

log = logging.getLogger("uvicorn.error")
STARTED, STOPPING, COUNTS = b"s", b"x", b"n"  # worker -> parent; COUNTS b"n<open> <handed>"
HANDED = b"h"  # parent -> worker: the message a connection's descriptor rides on
PAUSE_SECONDS = 0.1  # accepting waits this long when the process is out of descriptors or buffers
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
STOP_GRACE_SECONDS = 10.0  # beyond the graceful timeout, before a worker is killed


class WorkerStartError(CrmError):
    """A worker exited before it finished starting (its own log lines say why)."""


@dataclass
class Worker:
    """The parent's view of one worker process."""

    process: BaseProcess
    channel: socket.socket  # the parent's end of the pair
    started: bool = False
    stopping: bool = False
    handed: int = 0  # connections sent to it
    reported_open: int = 0  # its last report: connections it holds, and how many it had received
    reported_received: int = 0

    @property
    def open_connections(self) -> int:
        """What it held at its last report, plus what was handed to it since."""
        return self.reported_open + self.handed - self.reported_received


class HandedServer(uvicorn.Server):
    """A uvicorn server that listens on nothing: it serves the connections the parent hands it."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self.received = 0
        self._reported: tuple[int, int] | None = None
        self._connecting: set[asyncio.Task[Any]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan and the server state, no listener
        if self.should_exit:
            return
        loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), self._receive, loop)
        intake: Any = _Intake(self, loop)  # in place of a listener: shutdown closes it
        self.servers.append(intake)
        self._tell(STARTED)

    async def on_tick(self, counter: int) -> bool:
        counts = (len(self.server_state.connections), self.received)
        if counts != self._reported or counter % 10 == 0:  # on change, and each second regardless
            self._tell(COUNTS + b"%d %d" % counts)
            self._reported = counts
        return await super().on_tick(counter)

    def _receive(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            message, descriptors, flags, _ = socket.recv_fds(self.channel, 1024, 64)
        except BlockingIOError:
            return
        if not message:  # the parent has gone: finish what is in flight, then stop
            loop.remove_reader(self.channel.fileno())
            self.should_exit = True
            return
        if flags & socket.MSG_CTRUNC:
            log.warning("a handed connection was lost in transit")
        self.received += 1
        for descriptor in descriptors:
            connection = socket.socket(fileno=descriptor)
            task = loop.create_task(loop.connect_accepted_socket(self._protocol, connection))
            self._connecting.add(task)
            task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Any]) -> None:
        self._connecting.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the client left before we began
            log.debug("a handed connection could not be served: %s", type(task.exception()).__name__)

    def _protocol(self) -> asyncio.Protocol:
        make: Any = self.config.http_protocol_class  # as uvicorn's own startup makes them
        protocol: asyncio.Protocol = make(
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol

    def _tell(self, message: bytes) -> None:
        with contextlib.suppress(OSError):  # parent gone, or its queue full: the next report corrects
            self.channel.send(message)


class _Intake:
    """Stands in the server list for a listener: ``close`` tells the parent this worker is stopping
    (no more connections for it) and stops taking handed ones."""

    def __init__(self, server: HandedServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop

    def close(self) -> None:
        self.server._tell(STOPPING)
        self.loop.remove_reader(self.server.channel.fileno())

    async def wait_closed(self) -> None:
        return None


def _worker_main(config: uvicorn.Config, channel: socket.socket) -> None:
    # A process group of its own: a signal to the service's group (Ctrl-C, killpg) reaches the parent
    # alone, which passes one SIGTERM on; a second signal would make uvicorn drop in-flight requests.
    os.setpgid(0, 0)
    config.configure_logging()
    HandedServer(config, channel).run()


class Balancer:
    """Accepts on ``config``'s address and keeps ``config.workers`` worker processes serving."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.config = config
        self.workers: list[Worker] = []
        self._context = multiprocessing.get_context("spawn")
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT; raises ``WorkerStartError`` when a worker cannot start."""
        listener = self.config.bind_socket()  # bound (and announced in the log), not yet listening
        listener.listen(self.config.backlog)
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._stop.set())
        try:
            for _ in range(self.config.workers):
                self._start_worker()
            while not self._stop.is_set():
                for key, _ in self._selector.select(timeout=0.5):
                    if key.fileobj is listener:
                        self._accept(listener)
                    else:
                        self._hear(key.data)
                self._replace_dead()
        finally:
            self._selector.unregister(listener)
            listener.close()
            self._stop_workers()

    def _start_worker(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = self._context.Process(target=_worker_main, args=(self.config, theirs), daemon=False)
        process.start()
        theirs.close()
        ours.setblocking(False)  # a worker that stops reading never holds up the others
        worker = Worker(process, ours)
        self.workers.append(worker)
        self._selector.register(ours, selectors.EVENT_READ, worker)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_RESOURCES:  # the listener stays readable: pause, not spin
                    log.error("accepting paused: %s", os.strerror(exc.errno or 0))
                    time.sleep(PAUSE_SECONDS)
                    return
                continue  # that client's connection failed (reset, aborted): the next one
            with connection:  # the worker holds its own descriptor once handed
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._hand(connection)

    def _hand(self, connection: socket.socket) -> None:
        """To the started worker with the fewest open connections (any worker before one has started);
        one whose queue is full, or that is stopping or gone, is passed over."""
        ready = [w for w in self.workers if not w.stopping]
        for worker in sorted(ready, key=lambda w: (not w.started, w.open_connections)):
            try:
                socket.send_fds(worker.channel, [HANDED], [connection.fileno()])
            except OSError:  # its queue is full (BlockingIOError) or it has gone: the next one
                continue
            worker.handed += 1
            return
        log.error("no worker could take a connection; it is closed")

    def _hear(self, worker: Worker) -> None:
        try:
            message = worker.channel.recv(64)  # one report per message (SOCK_SEQPACKET)
        except BlockingIOError:
            return
        except OSError:
            message = b""
        if not message:
            self._forget(worker)
        elif message == STARTED:
            worker.started = True
        elif message == STOPPING:
            worker.stopping = True
        elif message.startswith(COUNTS):
            held, received = message[len(COUNTS) :].split()
            worker.reported_open, worker.reported_received = int(held), int(received)

    def _replace_dead(self) -> None:
        for worker in [w for w in self.workers if not w.process.is_alive()]:
            self._forget(worker)

    def _forget(self, worker: Worker) -> None:
        if worker not in self.workers:
            return
        self.workers.remove(worker)
        self._selector.unregister(worker.channel)
        worker.channel.close()
        worker.process.join(timeout=5)
        if self._stop.is_set():
            return
        if not worker.started:
            self._stop.set()
            raise WorkerStartError(f"a worker exited with {worker.process.exitcode} before it started")
        log.warning("worker %s exited with %s; starting another", worker.process.pid, worker.process.exitcode)
        self._start_worker()

    def _stop_workers(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        deadline = self.config.timeout_graceful_shutdown or 0
        for worker in self.workers:
            worker.process.join(timeout=deadline + STOP_GRACE_SECONDS)
            if worker.process.is_alive():
                log.error("worker %s did not stop in time; killed", worker.process.pid)
                worker.process.kill()
                worker.process.join()
            worker.channel.close()
