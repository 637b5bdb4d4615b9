"""Relaying one command and its response between a client and the backend, byte for byte.

The backend's bytes go to the client as they arrive, each chunk whole (everything the
backend stream holds when the relay looks, so usually one write per response); the
scanner (proxy.wire.scanner) only says where the response ends. Memory stays bounded: the
backend stream pauses its socket past its read limit, and every chunk waits for the
client's transport to drain below its high-water mark before the next is read, so a slow
client slows the backend read instead of growing a buffer.

Detached commands (``Relay.detach``): the commonest response, a result, OK or ERR whole in
one socket read, is relayed by the backend stream's callback as it arrives, and the
session's task goes straight back to reading the client. Each statement so wakes the task
once (for the command) instead of twice; that second wake-up (a future, a loop callback,
the resumption of the session's coroutines) was most of what a point select cost the proxy
beyond a bare relay: user CPU per point select at 32 client threads fell from 7.8 to 5.1 us
with it (a bare uvloop relay: 4.7). Anything else hands the response back to the task,
which relays it as above (``take_back``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from proxy.errors import BackendLost, BackendProtocolError
from proxy.transport.stream import PacketStream
from proxy.wire.capabilities import CLIENT_DEPRECATE_EOF, MARIADB_CLIENT_CACHE_METADATA
from proxy.wire.scanner import ResponseScanner, Shape, whole_result
from proxy.wire.seq_shift import SequenceShift


class ClientGone(Exception):
    """The client closed its connection while the proxy was answering it."""


class Relay:
    """Moves one command to the backend and its response back, for one session."""

    def __init__(
        self,
        client: PacketStream,
        backend: PacketStream,
        on_settled: Callable[[int], None],
        capabilities: int = 0,
    ) -> None:
        self.client = client
        self.backend = backend
        #: The backend connection's capabilities (the shape of its responses).
        self.capabilities = capabilities
        self._ok_end = bool(capabilities & CLIENT_DEPRECATE_EOF)
        self._cache_metadata = bool(capabilities & MARIADB_CLIENT_CACHE_METADATA)
        #: Whether any byte of the current response has reached the client: after that,
        #: an error can no longer be reported in-band, only by closing the connection.
        self.response_started = False
        #: Called with the status flags when a detached command's response has gone to
        #: the client.
        self._on_settled = on_settled

    def detach(self, command: bytes) -> bool:
        """Send a command answered by a result (Shape.RESULT: COM_QUERY,
        COM_STMT_EXECUTE), which the backend stream's callback relays if it comes whole
        in one read; if it does not, the client stream's read is interrupted
        (ReadInterrupted), and the reader then calls ``take_back`` and ``relay``.

        False when the command cannot be detached (bytes or the end already wait in the
        backend stream, or the write failed): nothing was sent, ``relay`` sends it.
        Detached writes skip the drain: the next command is only read once the backend
        has answered this one, so it has read all of it.
        """
        backend = self.backend
        if not backend.divert(self._on_response):
            return False
        self.response_started = False
        try:
            backend.write_raw(command)
        except (OSError, RuntimeError):
            backend.undivert()
            return False
        return True

    def _on_response(self, data: bytes) -> bool:
        """The backend stream's callback for a detached command: a whole result goes to
        the client at once (True); anything else stays in the backend stream for the
        task, which is interrupted to take it (False)."""
        try:
            whole = whole_result(data, self._ok_end, self._cache_metadata) if data else None
            if whole is not None and whole[0] == len(data):
                self.client.write_raw(data)
                self.response_started = True
                self._on_settled(whole[1])
                return True
        except (ValueError, IndexError, OSError, RuntimeError):
            pass  # the task's relay meets the same bytes and reports them its way
        self.client.interrupt()
        return False

    def take_back(self) -> None:
        """The task relays the rest of a detached command's response (nothing of it has
        reached the client): it did not come whole, or the client sent more first."""
        self.backend.undivert()
        self.client.clear_interrupt()

    async def send_command(self, raw: bytes | bytearray) -> None:
        if self._write_command(raw):
            await self._drain_backend()

    def _write_command(self, raw: bytes | bytearray) -> bool:
        """Write a command to the backend; True when a drain must follow."""
        self.response_started = False
        try:
            self.backend.write_raw(raw)
            return self.backend.must_drain()
        except (OSError, RuntimeError) as exc:
            raise BackendLost("lost the connection to the backend MySQL server") from exc

    async def _drain_backend(self) -> None:
        try:
            await self.backend.drain()
        except (OSError, RuntimeError) as exc:
            raise BackendLost("lost the connection to the backend MySQL server") from exc

    async def relay(
        self,
        shape: Shape,
        command: bytes | None = None,
        rewrite: Callable[[bytes | bytearray], bytes | bytearray] | None = None,
        shift: SequenceShift | None = None,
    ) -> ResponseScanner:
        """Send ``command`` (if given), then copy the response to the client until the
        scanner says it is complete. ``rewrite``: what the client gets of each chunk in
        its place (the scanner reads the backend's bytes; proxy.transport.metadata_relay);
        ``shift`` renumbers it after packets the proxy sent first (progress reports,
        proxy.wire.seq_shift).

        This runs for every relayed command, so the writes are inline (the command's
        too: one coroutine less than ``send_command`` first) and wait for a drain only
        when a transport is past its high-water mark (PacketStream.must_drain).
        """
        if command is not None and self._write_command(command):
            await self._drain_backend()
        scanner = ResponseScanner(shape, self.capabilities)
        client = self.client
        read_chunk = self.backend.read_chunk
        while True:
            try:
                chunk = await read_chunk()
            except OSError as exc:
                raise BackendLost("lost the connection to the backend MySQL server") from exc
            if not chunk:
                raise BackendLost("the backend MySQL server closed the connection")
            try:
                end = scanner.feed(chunk)
            except (ValueError, IndexError) as exc:
                raise BackendProtocolError("malformed response from the backend") from exc
            if 0 <= end < len(chunk):
                raise BackendProtocolError("the backend sent bytes after the end of a response")
            self.response_started = True
            if shift is not None:
                chunk = shift.apply(chunk)
            try:
                client.write_raw(chunk if rewrite is None else rewrite(chunk))
                if client.must_drain():
                    await client.drain()
            except (OSError, RuntimeError) as exc:
                raise ClientGone from exc
            if end < 0:
                continue
            if not scanner.wants_local_file:
                return scanner
            await self._pump_local_file()
            scanner.resume_after_local_file()

    async def _pump_local_file(self) -> None:
        """LOAD DATA LOCAL INFILE: the client's file packets go to the backend as they
        arrive (never a whole packet held: they may be 16 MiB each), up to and including
        the empty packet that ends them."""
        while True:
            try:
                _, size = await self.client.pass_message(self._send_file_chunk)
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise ClientGone from exc
            if not size:
                return

    async def _send_file_chunk(self, chunk: bytes | bytearray) -> None:
        try:
            self.backend.write_raw(chunk)
            await self.backend.drain()
        except (OSError, RuntimeError) as exc:
            raise BackendLost("lost the connection to the backend MySQL server") from exc
