"""``--workers N``: N processes serving one port, and the supervisor that runs them.

Why: one process runs one event loop on one core. On a host with more cores, N worker
processes, each a whole proxy with its own loop, share the listening port through
SO_REUSEPORT, and the kernel spreads new connections over their listening sockets (each
with its own accept queue: no thundering herd). A connection stays with the worker that
accepted it. (On a 2-core machine, with the database on the same cores, two processes
measured no faster than one: docs/performance.md, Benchmarks.)

The supervisor (this process, after uvicorn's):

- binds the address first, without SO_REUSEPORT, so a port already in use fails like
  it does for one process, and port 0 becomes a real port; then it sets SO_REUSEPORT
  and keeps the socket, never listening (a socket that does not listen gets no
  connections), so the port stays reserved while a worker restarts;
- starts the workers (``multiprocessing`` spawn: a fresh interpreter each), waits until
  every one listens or one fails, in which case it stops the others and raises that
  failure (the same one line and exit code as one process);
- forwards SIGTERM/SIGINT to the workers, which shut down gracefully; a worker still
  running ``shutdown_timeout`` + 10 s later is killed;
- restarts a worker that dies on its own (at most once a second each); a worker whose
  supervisor dies stops by itself.

Each worker owns a slice of the connection ids (proxy.session.kill.ConnectionIds) and answers
its siblings about its connections on a Unix socket (proxy.session.peers), so a KILL of any
worker's connection id works from any connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from proxy import __version__
from proxy.config import Config
from proxy.errors import BackendError, ConfigError
from proxy.logs import configure_logging
from proxy.ops.group import GroupOps
from proxy.server import ProxyServer
from proxy.session.peers import WorkerSlot, serve_peers
from proxy.transport import event_loop
from proxy.transport.heap import settle_after_startup

log = logging.getLogger("mlproxy")

#: The longest path of an AF_UNIX socket (Linux's sun_path: 108 bytes with its NUL).
UNIX_PATH_MAX = 107
#: Seconds past the shutdown timeout before a worker that did not exit is killed.
KILL_GRACE = 10.0
#: Seconds a worker has to start listening (or fail), beyond the backend connect timeout.
START_GRACE = 30.0
#: The shortest time between two starts of the same worker.
RESTART_DELAY = 1.0
#: How often a worker checks that its supervisor is still there.
ORPHAN_CHECK_INTERVAL = 1.0

_SPAWN = multiprocessing.get_context("spawn")


@dataclass
class _Worker:
    slot: WorkerSlot
    process: BaseProcess
    pipe: Connection  # the worker's one report: ("ready",) or ("error", kind, message)
    started: float = field(default_factory=time.monotonic)
    reported: bool = False


class Supervisor:
    """Runs ``config.workers`` workers on one address until SIGTERM/SIGINT."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.directory = peer_directory(config.workers)
        self.workers: list[_Worker] = []
        self._placeholder: socket.socket | None = None
        self._signals: list[int] = []
        self.ops = GroupOps(config)

    def run(self) -> int:
        wakeup_r, wakeup_w = socket.socketpair()  # signals wake the supervisor's wait()
        wakeup_r.setblocking(False)
        wakeup_w.setblocking(False)
        try:
            # First: as PID 1 of a container a signal without a handler is dropped, and the
            # workers' start (their backend probes) may take connect_timeout; one caught
            # meanwhile stops the group as soon as it has started.
            self._install_signals(wakeup_w)
            self._reserve_port()
            self.ops.prepare()
            self._start_all()
            self.ops.serving()
            self._supervise(wakeup_r)
            return 0
        finally:
            self.ops.stopping()
            self._stop_all()
            self.ops.close()
            signal.set_wakeup_fd(-1)
            wakeup_r.close()
            wakeup_w.close()
            if self._placeholder is not None:
                self._placeholder.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- start ----------------------------------------------------------------------------

    def _reserve_port(self) -> None:
        host, port = self.config.listen_address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        # Set after bind: the bind above stays exclusive, the workers' binds may join.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._placeholder = sock
        bound = sock.getsockname()[1]
        address = f"[{host}]:{bound}" if family == socket.AF_INET6 else f"{host}:{bound}"
        self.config = replace(self.config, listen=address)

    def _start_all(self) -> None:
        self.workers = [self._spawn(index) for index in range(self.config.workers)]
        for worker in self.workers:
            self._wait_ready(worker)
        pids = ", ".join(str(w.process.pid) for w in self.workers)
        log.info(
            "mlproxy %s listening on %s, %d workers (pids %s)",
            __version__,
            self.config.listen,
            len(self.workers),
            pids,
        )

    def _spawn(self, index: int) -> _Worker:
        slot = WorkerSlot(index, self.config.workers, self.directory)
        ours, theirs = _SPAWN.Pipe(duplex=False)
        process = _SPAWN.Process(
            target=worker_main, args=(self.config, slot, theirs), name=f"mlproxy-worker-{index}"
        )
        process.start()
        theirs.close()
        return _Worker(slot, process, ours)

    def _wait_ready(self, worker: _Worker) -> None:
        """Block until the worker reports that it listens; raise what it failed with."""
        timeout = self.config.connect_timeout + START_GRACE
        report: tuple[Any, ...] = ("error", "backend", "the worker did not start in time")
        with contextlib.suppress(EOFError, OSError):
            if worker.pipe.poll(timeout):
                report = worker.pipe.recv()
        worker.reported = True
        if report[0] == "ready":
            return
        _, kind, message = report
        raise ConfigError(message) if kind == "config" else BackendError(message)

    # -- run ------------------------------------------------------------------------------

    def _install_signals(self, wakeup: socket.socket) -> None:
        signal.set_wakeup_fd(wakeup.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda number, _frame: self._signals.append(number))

    def _supervise(self, wakeup: socket.socket) -> None:
        """Until SIGTERM/SIGINT: replace workers that exit, and log how the replacements
        start (without waiting for them, so a signal is never kept waiting)."""
        while not self._signals:
            exits = {w.process.sentinel: w for w in self.workers}
            reports = {w.pipe: w for w in self.workers if not w.reported}
            ready = wait([wakeup, *reports, *exits])
            if wakeup in ready:
                with contextlib.suppress(BlockingIOError):
                    wakeup.recv(64)
            for pipe in reports.keys() & set(ready):
                self._read_report(reports[pipe])
            for sentinel in exits.keys() & set(ready):
                if not self._signals:
                    self._replace(exits[sentinel])
        log.info("mlproxy stopping %d workers", len(self.workers))

    def _read_report(self, worker: _Worker) -> None:
        """A replacement worker's report: logged when it could not start."""
        worker.reported = True
        try:
            report = worker.pipe.recv()
        except (EOFError, OSError):
            return  # it died without a word: its exit is handled as any other
        if report[0] != "ready":
            log.error("worker %d could not start again: %s", worker.slot.index, report[2])

    def _replace(self, dead: _Worker) -> None:
        """Start a worker in the place of one that exited (at most one a second each:
        a worker that cannot start, say the backend is down, is retried that often)."""
        if not dead.reported and dead.pipe.poll(0):
            self._read_report(dead)
        log.warning(
            "worker %d (pid %s) exited with code %s; starting another",
            dead.slot.index,
            dead.process.pid,
            dead.process.exitcode,
        )
        dead.pipe.close()
        self.ops.worker_exited(dead.process.pid)
        time.sleep(max(0.0, dead.started + RESTART_DELAY - time.monotonic()))
        self.workers[dead.slot.index] = self._spawn(dead.slot.index)

    # -- stop -----------------------------------------------------------------------------

    def _stop_all(self) -> None:
        """SIGTERM every live worker, wait for them (bounded), kill what is left."""
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: the worker's graceful shutdown
        deadline = time.monotonic() + self.config.shutdown_timeout + KILL_GRACE
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                log.warning("worker %d did not stop in time: killing it", worker.slot.index)
                worker.process.kill()
                worker.process.join(5)
            worker.pipe.close()


def supervise(config: Config) -> int:
    """Run ``config.workers`` worker processes on ``config.listen`` until SIGTERM/SIGINT."""
    return Supervisor(config).run()


# -- the worker process -------------------------------------------------------------------


def peer_directory(workers: int) -> str:
    """A private directory (mode 0700) for the workers' peer sockets: in the temporary
    directory, or in /tmp when that one's path is too deep for a socket's (a long TMPDIR,
    as some CI runners and sandboxes set)."""
    last_socket = WorkerSlot(workers - 1, workers, "").socket_path(workers - 1)  # the longest
    for parent in (None, "/tmp"):
        directory = tempfile.mkdtemp(prefix="mlproxy-workers-", dir=parent)
        if len(os.fsencode(os.path.join(directory, last_socket))) <= UNIX_PATH_MAX:
            return directory
        os.rmdir(directory)
    raise ConfigError(
        f"no temporary directory short enough for the workers' sockets ({UNIX_PATH_MAX} bytes"
        f" at most): set TMPDIR to a shorter one than {tempfile.gettempdir()!r}"
    )


def worker_main(config: Config, slot: WorkerSlot, pipe: Connection) -> None:
    """A worker process's entry point: serve until SIGTERM/SIGINT, reporting to the
    supervisor through ``pipe`` that it listens, or why it could not start."""
    configure_logging(config.log_level, worker=slot.index, log_format=config.log_format)
    try:
        event_loop.run(_serve(config, slot, pipe), config.loop)
    except ConfigError as exc:
        _report(pipe, ("error", "config", str(exc)))
        raise SystemExit(2) from None
    except BackendError as exc:
        _report(pipe, ("error", "backend", str(exc)))
        raise SystemExit(1) from None
    except OSError as exc:  # e.g. its peer socket: said now, not as "did not start in time"
        log.exception("worker %d could not start", slot.index)
        _report(pipe, ("error", "start", f"worker {slot.index} could not start: {exc}"))
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass  # SIGINT before the loop's own handler was installed
    finally:
        pipe.close()


async def _serve(config: Config, slot: WorkerSlot, pipe: Connection) -> None:
    server = ProxyServer(config, worker=slot)
    await server.start()
    settle_after_startup()
    assert server.ctx is not None
    peers = await serve_peers(slot, server.ctx.sessions)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    orphan_watch = asyncio.create_task(_stop_when_orphaned(server, os.getppid()))
    _report(pipe, ("ready",))
    try:
        await server.serve()
    finally:
        orphan_watch.cancel()
        peers.close()


async def _stop_when_orphaned(server: ProxyServer, supervisor: int) -> None:
    """A worker whose supervisor died (SIGKILL, a crash) stops too, rather than serve
    the port unsupervised and unstoppable by the supervisor's signals."""
    while os.getppid() == supervisor:  # noqa: ASYNC110 - no event tells of a parent's death
        await asyncio.sleep(ORPHAN_CHECK_INTERVAL)
    log.warning("the supervisor (pid %d) is gone: stopping", supervisor)
    server.request_stop()


def _report(pipe: Connection, message: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):
        pipe.send(message)
