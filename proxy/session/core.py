"""What a session's collaborators share of it: the narrow view they are typed against.

The session (proxy.session.session.Session) owns the connection: its context, client
stream, backend connection, the identity logged in and the relay between them. Its
collaborators (logging in, KILLs, ...) each own their own state and reach those through
this Protocol, so none imports the session class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ml_backends.counters import MLCounters
from proxy.auth.client_auth import ClientIdentity
from proxy.logs import ContextLog
from proxy.ml.status_access import ProcessPrivilege
from proxy.transport.relay import Relay
from proxy.transport.stream import Message, PacketStream
from proxy.upstream.backend import BackendConnection
from proxy.wire.scanner import ResponseScanner, Shape

if TYPE_CHECKING:
    from proxy.session.context import ProxyContext


class SessionCore(Protocol):
    """The connection a session serves, as its collaborators see it."""

    #: What all sessions of the process share (configuration, registry, metrics, ...).
    ctx: ProxyContext
    #: The client side.
    client: PacketStream
    #: The connection id the proxy gave the client.
    id: int
    log: ContextLog
    #: The backend connection, logged in as the client, once logged in.
    backend: BackendConnection | None
    #: Who is logged in, once logged in.
    identity: ClientIdentity | None
    #: The client negotiated MySQL 8's query attributes (proxy.wire.query_attributes).
    query_attributes: bool
    #: Relays the backend's responses to the client, once logged in.
    relay: Relay | None
    #: This session's Aurora_ml_* counters (SHOW [SESSION] STATUS).
    ml_counters: MLCounters
    #: Whether the account may see the proxy's global counters (asked of the backend once).
    process_privilege: ProcessPrivilege

    async def forward(self, message: Message, shape: Shape | None) -> ResponseScanner | None:
        """Send a command to the backend and relay its response (``shape``; None: none)."""

    def detach(self, message: Message) -> bool:
        """Send a command whose response the backend stream relays by itself, if it can."""

    def settled(self, status: int) -> None:
        """A detached command's response has reached the client (Relay's callback)."""

    def forget_backend_state(self) -> None:
        """Drop what the proxy keeps of the backend session (it was reset or replaced)."""
