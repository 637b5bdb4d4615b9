"""What every session shares: settings, the backend's identity, the live sessions."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from mysql_mimic.types import Capabilities

from proxy.auth.client_auth import AuthSettings
from proxy.auth.login_gate import LoginGate
from proxy.ml.activity import CLIENT_PROGRESS
from proxy.ml.path import MLRuntime
from proxy.ml.registry import FunctionRegistry
from proxy.ops.metrics import Metrics
from proxy.session.kill import ConnectionIds
from proxy.session.live import LiveSession
from proxy.session.peers import SiblingProxies
from proxy.upstream.backend import RELAYABLE_CAPABILITIES, BackendAddress
from proxy.wire.handshake import Greeting
from rewriter.detect import CallDetector

# Capabilities the proxy handles itself on the client side, whatever the backend offers.
_PROXY_SIDE = (
    Capabilities.CLIENT_PROTOCOL_41
    | Capabilities.CLIENT_SECURE_CONNECTION
    | Capabilities.CLIENT_PLUGIN_AUTH
    | Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capabilities.CLIENT_CONNECT_WITH_DB
    | Capabilities.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    handshake: float = 10.0
    shutdown: float = 30.0


@dataclass
class ProxyContext:
    """Shared by all sessions of one proxy process."""

    backend_address: BackendAddress
    #: The latest backend greeting: the start-up probe's, then each backend login's
    #: (what clients are greeted with, proxy.wire.greeting).
    backend_greeting: Greeting
    auth: AuthSettings
    ml: MLRuntime
    #: Bounds logins in progress and logged-in sessions (max_connections).
    gate: LoginGate
    backend_tls: ssl.SSLContext | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    detector: CallDetector = field(default_factory=CallDetector)
    #: Endpoint aliases stored in the backend (the server starts its poller).
    registry: FunctionRegistry = field(default_factory=FunctionRegistry)
    #: The largest ML statement read whole (Config.ml_max_statement_bytes).
    ml_max_statement_bytes: int = 1 << 20
    sessions: dict[int, LiveSession] = field(default_factory=dict)
    #: This process's connection ids (a slice of the range with --workers).
    ids: ConnectionIds = field(default_factory=ConnectionIds)
    #: The other worker processes or replicas, for KILL of their connections (None: alone).
    peers: SiblingProxies | None = None
    #: What /metrics reports (None: --metrics-listen is off).
    metrics: Metrics | None = None

    @property
    def advertised_capabilities(self) -> int:
        """What the proxy offers clients: what it can relay and the backend supports.
        CLIENT_MYSQL (CLIENT_LONG_PASSWORD) only when the backend sets it: a MariaDB
        backend's clients then see a MariaDB server, and its extended capabilities. With
        a MariaDB backend, progress reports too (CLIENT_PROGRESS_OBSOLETE: the proxy's
        own, during ML statements; the backend's never reach clients, since the proxy
        does not ask for them, proxy.ml.activity)."""
        caps = (RELAYABLE_CAPABILITIES & self.backend_greeting.capabilities) | int(_PROXY_SIDE)
        if self.auth.tls is not None:
            caps |= int(Capabilities.CLIENT_SSL)
        if self.backend_greeting.is_mariadb:
            caps |= int(CLIENT_PROGRESS)
        return caps

    def new_connection_id(self) -> int:
        return self.ids.next()
