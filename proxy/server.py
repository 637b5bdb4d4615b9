"""The listening server: accept clients, cap connections, shut down cleanly.

Lifecycle (after uvicorn's): ``start()`` probes the backend and opens the listener;
``serve()`` runs until ``request_stop()`` (SIGTERM/SIGINT in the CLI); ``shutdown()``
closes the listener, lets running statements finish up to the shutdown timeout, and
cancels what is left. Every session task is tracked in a set with a done-callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from typing import Any

from proxy import __version__
from proxy.auth.client_auth import AuthSettings
from proxy.auth.lent_identity import warn_at_start
from proxy.auth.login_gate import LoginGate
from proxy.auth.native_accounts import NativeAccounts
from proxy.config import BackendURL, Config, parse_backend_url, read_users_file
from proxy.errors import ConfigError, TooManyConnections, error_payload
from proxy.logs import CONNECTION_ID
from proxy.ml.registry import FunctionRegistry
from proxy.ml.runtime import build_runtime
from proxy.ops.parts import OpsParts
from proxy.replicas.replica import Replica
from proxy.session.context import ProxyContext, Timeouts
from proxy.session.kill import ConnectionIds
from proxy.session.live import LiveSession
from proxy.session.peers import Peers, WorkerSlot
from proxy.session.session import Session
from proxy.transport.event_loop import running_loop_name
from proxy.transport.heap import settle_after_startup
from proxy.transport.stream import PacketStream, start_server
from proxy.transport.tls import backend_context, generate_rsa_key, server_context
from proxy.upstream.backend import BackendConnection, Login, probe, service_login
from rewriter.calls import register_function_names
from rewriter.detect import CallDetector

log = logging.getLogger(f"mlproxy.{__name__}")

#: How often busy sessions are checked for a client that closed its socket.
CLIENT_CHECK_INTERVAL = 1.0
#: Seconds a refused connection's ERR packet may take to leave before the socket is cut.
REFUSAL_CLOSE_TIMEOUT = 1.0


class ProxyServer:
    """One mlproxy listener and its sessions."""

    def __init__(self, config: Config, worker: WorkerSlot | None = None) -> None:
        self.config = config
        #: This process's place among --workers processes (None: the only one).
        self.worker = worker
        self.ctx: ProxyContext | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self._registry_poller: asyncio.Task[None] | None = None
        #: /metrics, /healthz, /readyz (--metrics-listen); a worker's are its supervisor's.
        self.ops = OpsParts.for_process(config, worker is not None)
        #: What this process shares with other replicas through Redis (--ml-cache...).
        self.replica: Replica | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        sock: socket.socket = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        """Bind, probe the backend, then serve. Raises ConfigError or BackendUnavailable.

        The port is bound first: a port in use is the quickest error to report."""
        host, port = self.config.listen_address
        try:
            self._server = await start_server(
                self._on_client,
                host,
                port,
                reuse_address=True,
                reuse_port=self.worker is not None,  # the workers share the port
                backlog=1024,
                start_serving=False,
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        try:
            self.ctx = await self._build_context()
        except BaseException:
            self._server.close()
            if self.replica is not None:
                await self.replica.close()
            raise
        await self._server.start_serving()
        warn_at_start(self.ctx.backend_address)
        self.ops.serving(self.ctx.ml.counters, self.ctx.backend_address)
        self._watchdog = asyncio.create_task(self._watch_clients(), name="mlproxy-client-watchdog")
        self._registry_poller = asyncio.create_task(
            self._start_registry(self.ctx).run(), name="mlproxy-function-registry"
        )
        log.info(
            "mlproxy %s listening on %s:%d, backend %s (%s), %s loop",
            __version__,
            host,
            self.port,
            self.ctx.backend_address,
            self.ctx.backend_greeting.server_version,
            running_loop_name(),
        )

    async def _build_context(self) -> ProxyContext:
        config = self.config
        url = parse_backend_url(config.require_backend())
        backend_tls = (
            backend_context(config.backend_tls_ca, bool(config.backend_tls_ca))
            if config.backend_tls
            else None
        )
        account = service_login(*_url_account(url)) if url.user else None
        greeting = await probe(url.address, config.connect_timeout, account, backend_tls)
        rsa_key = generate_rsa_key()
        tls, certificate = None, b""
        if config.tls:
            try:
                host = config.listen_address[0]
                tls, certificate = server_context(config.tls_cert, config.tls_key, rsa_key, host)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load the TLS certificate: {exc}") from exc
        users = read_users_file(config.users_file) if config.users_file else {}
        sessions: dict[int, LiveSession] = {}
        self.replica = Replica(config, sessions)
        await self.replica.start()
        ml = build_runtime(config, metrics=self.ops.metrics, shared=self.replica.cache_link)
        detector = CallDetector(ml.functions)
        register_function_names(detector.names)
        return ProxyContext(
            backend_address=url.address,
            backend_greeting=greeting,
            ml=ml,
            gate=LoginGate(
                config.max_pending_logins,
                config.max_pending_logins_per_address,
                config.max_connections,
            ),
            auth=AuthSettings(
                rsa_key=rsa_key,
                tls=tls,
                require_tls=config.require_tls,
                users=users,
                certificate=certificate,
                accounts=self._native_accounts(account, url, backend_tls),
            ),
            backend_tls=backend_tls,
            timeouts=Timeouts(
                config.connect_timeout, config.handshake_timeout, config.shutdown_timeout
            ),
            detector=detector,
            ml_max_statement_bytes=config.ml_max_statement_bytes,
            metrics=self.ops.metrics,
            sessions=sessions,
            **self._worker_parts(),
        )

    def _native_accounts(
        self, account: Login | None, url: BackendURL, tls: ssl.SSLContext | None
    ) -> NativeAccounts | None:
        """Account hashes, read with the backend URL's account (proxy.auth.native_accounts)."""
        if account is None:
            return None
        timeout = self.config.connect_timeout

        async def connect() -> BackendConnection:
            return await BackendConnection.open(url.address, account, tls=tls, timeout=timeout)

        return NativeAccounts(connect)

    def _worker_parts(self) -> dict[str, Any]:
        """With a replica registry: ids leased from it, and the other replicas (workers
        included) reached through it. Else with --workers: this worker's slice of
        connection ids, and its siblings."""
        if self.replica is not None and self.replica.ids is not None:
            return {"ids": self.replica.ids, "peers": self.replica.peers}
        if self.worker is None:
            return {}
        return {
            "ids": ConnectionIds(self.worker.index, self.worker.workers),
            "peers": Peers(self.worker),
        }

    def request_stop(self) -> None:
        self.ops.stopping()  # /readyz says no before the listener closes
        self._stop.set()

    async def serve(self) -> None:
        """Serve until asked to stop, then shut down."""
        await self._stop.wait()
        await self.shutdown()

    async def _watch_clients(self) -> None:
        """Notice clients that vanish while their statement runs (the relay only notices
        when it writes, and a long statement may write nothing for minutes)."""
        assert self.ctx is not None
        while True:
            await asyncio.sleep(CLIENT_CHECK_INTERVAL)
            for session in list(self.ctx.sessions.values()):
                if session.busy and session.client.at_eof():
                    session.client_vanished()

    def _start_registry(self, ctx: ProxyContext) -> FunctionRegistry:
        """Endpoint aliases: polled with the backend URL's account, else as the latest
        client; the detector watches the built-ins and every alias name."""
        url = parse_backend_url(self.config.require_backend())
        builtins = list(ctx.ml.functions)

        async def connect() -> BackendConnection | None:
            account = _url_account(url) if url.user else ctx.auth.passwords.latest()
            if account is None:
                return None
            return await BackendConnection.open(
                ctx.backend_address,
                service_login(*account),
                tls=ctx.backend_tls,
                timeout=ctx.timeouts.connect,
            )

        def watch(names: frozenset[str]) -> None:
            ctx.detector = CallDetector([*builtins, *names])

        ctx.registry = FunctionRegistry(connect, self.config.registry_refresh)
        ctx.registry.on_change = watch
        return ctx.registry

    async def shutdown(self) -> None:
        self.ops.stopping()
        if self._registry_poller is not None:
            # Awaited: its connection must close before the loop does.
            self._registry_poller.cancel()
            await asyncio.wait([self._registry_poller], timeout=5)
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.ctx is not None and self.ctx.auth.accounts is not None:
            await self.ctx.auth.accounts.close()
        if self._server is not None:
            self._server.close()  # stop accepting; wait_closed comes last (3.12 waits for clients)
        assert self.ctx is not None
        for session in list(self.ctx.sessions.values()):
            session.stop()
        if self._tasks:
            log.info(
                "waiting up to %.0f s for %d connection(s)",
                self.config.shutdown_timeout,
                len(self._tasks),
            )
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.config.shutdown_timeout)
            if pending:
                await self._cut_running_statements(pending)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), timeout=5)
        await self.ops.close()
        if self.replica is not None:
            await self.replica.close()
        log.info("mlproxy stopped")

    async def _cut_running_statements(self, pending: set[asyncio.Task[None]]) -> None:
        """Past the shutdown timeout: kill the statements still running on the backend
        (cancelling our side alone would leave them running, holding their locks), then
        cancel the sessions."""
        assert self.ctx is not None
        busy = [s for s in self.ctx.sessions.values() if s.busy]
        log.warning("shutdown timeout: cutting %d running statement(s)", len(busy))
        if busy:
            await asyncio.wait(
                [asyncio.create_task(s.kill_backend_query()) for s in busy], timeout=5
            )
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=5)

    async def _on_client(self, stream: PacketStream) -> None:
        task = asyncio.current_task()
        assert task is not None and self.ctx is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            pending = self.ctx.gate.enter(stream.peer_host)
        except TooManyConnections as exc:
            await _refuse_before_greeting(stream, exc)
            return
        connection_id = self.ctx.new_connection_id()
        CONNECTION_ID.set(connection_id)  # this task's log records carry it (proxy.logs)
        session = Session(self.ctx, stream, connection_id, pending)
        session.task = task
        with contextlib.suppress(asyncio.CancelledError):  # shutdown: the session closed itself
            await session.run()


def _url_account(url: BackendURL) -> tuple[bytes, bytes]:
    return (url.user or "").encode(), (url.password or "").encode()


async def _refuse_before_greeting(stream: PacketStream, error: TooManyConnections) -> None:
    """An ERR packet in place of the greeting (as MySQL answers 1040), then close at once:
    no backend work, and no wait on a client that does not read (proxy.auth.login_gate logs)."""
    with contextlib.suppress(OSError, RuntimeError):
        stream.write(error_payload(error, 0), 0)
    stream.close()
    await stream.wait_closed(REFUSAL_CLOSE_TIMEOUT)


async def run_server(config: Config, on_ready: Callable[[ProxyServer], None] | None = None) -> None:
    """Start, serve until SIGTERM/SIGINT, then shut down gracefully.

    The handlers come first: as PID 1 of a container (deploy/Dockerfile) a signal the
    process has no handler for is dropped, so a SIGTERM arriving while the backend is
    probed would be lost; caught, it stops the proxy as soon as start() returns."""
    server = ProxyServer(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    await server.start()
    settle_after_startup()
    if on_ready is not None:
        on_ready(server)
    await server.serve()
