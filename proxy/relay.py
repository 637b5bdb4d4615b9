"""Relaying one command and its response between a client and the backend, byte for byte.

The backend's bytes go to the client as they arrive, in chunks of whatever the socket
delivered; the scanner (proxy.scanner) only says where the response ends. Memory stays
bounded: the backend reader pauses its socket past its limit, and every chunk waits for
the client's transport to drain below its high-water mark before the next is read, so a
slow client slows the backend read instead of growing a buffer.
"""

from __future__ import annotations

import asyncio

from proxy.errors import BackendLost, BackendProtocolError
from proxy.scanner import ResponseScanner, Shape
from proxy.stream import PacketStream

#: How much to read from the backend at a time.
RELAY_CHUNK = 1 << 16


class ClientGone(Exception):
    """The client closed its connection while the proxy was answering it."""


class Relay:
    """Moves one command to the backend and its response back, for one session."""

    def __init__(self, client: PacketStream, backend: PacketStream) -> None:
        self.client = client
        self.backend = backend
        #: Whether any byte of the current response has reached the client: after that,
        #: an error can no longer be reported in-band, only by closing the connection.
        self.response_started = False

    async def send_command(self, raw: bytes) -> None:
        self.response_started = False
        try:
            self.backend.write_raw(raw)
            if self.backend.must_drain():
                await self.backend.drain()
        except (OSError, RuntimeError) as exc:
            raise BackendLost("lost the connection to the backend MySQL server") from exc

    async def relay(self, shape: Shape) -> ResponseScanner:
        """Copy the response to the client until the scanner says it is complete.

        This runs for every relayed command, so the client write is inline and waits for
        a drain only when the transport kept some of the chunk (PacketStream.must_drain).
        """
        scanner = ResponseScanner(shape)
        client = self.client
        reader = self.backend.reader
        while True:
            try:
                chunk = await reader.read(RELAY_CHUNK)
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
            try:
                client.write_raw(chunk)
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
        """LOAD DATA LOCAL INFILE: the client's file packets go to the backend, up to
        and including the empty packet that ends them."""
        while True:
            try:
                message = await self.client.read_message()
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise ClientGone from exc
            try:
                self.backend.write_raw(message.raw)
                await self.backend.drain()
            except (OSError, RuntimeError) as exc:
                raise BackendLost("lost the connection to the backend MySQL server") from exc
            if not message.payload:
                return
