"""What the rest of the proxy may ask of a live session: the narrow view KILL, the worker
peers and shutdown need, so none of them imports the session class (and its handlers)."""

from __future__ import annotations

from typing import Protocol

from proxy.ml.activity import RunningML
from proxy.transport.stream import PacketStream
from proxy.upstream.backend import BackendConnection


class LiveSession(Protocol):
    """A logged-in or logging-in client connection (proxy.session.session.Session)."""

    #: The connection id the proxy gave it.
    id: int
    #: The session's backend connection, once logged in.
    backend: BackendConnection | None
    #: The client side.
    client: PacketStream
    #: A command is running (its reply may take long).
    busy: bool
    #: The ML statement it runs, while it runs one (SHOW PROCESSLIST, KILL).
    running_ml: RunningML | None

    def stop(self) -> None:
        """Shut down: now when idle, after the current command when busy."""

    def client_vanished(self) -> None:
        """The client closed its socket while its statement runs."""

    def close_client(self) -> None:
        """Drop the client connection (its backend thread was killed)."""

    def kill_query(self) -> None:
        """Stop its ML statement (a KILL QUERY of its backend thread succeeded)."""

    async def kill_backend_query(self) -> None:
        """KILL QUERY this session's backend thread from a side connection."""
