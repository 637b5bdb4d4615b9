"""Packet I/O over asyncio streams: the only place the protocol meets sockets."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import cast

from proxy.packets import MAX_PAYLOAD, frame


@dataclass(slots=True)
class Message:
    """One logical message: its payload and the raw packets that carried it."""

    payload: bytes
    raw: bytes
    first_seq: int
    last_seq: int

    @property
    def next_seq(self) -> int:
        return (self.last_seq + 1) & 0xFF


class PacketStream:
    """Reads and writes MySQL packets on one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        # The socket's transport, written to directly on the per-command path (one Python
        # call less per write than StreamWriter.write); start_tls replaces it.
        self._transport = writer.transport

    async def read_message(self, max_size: int = 1 << 30) -> Message:
        """Read one logical message, joining packets split at 16 MiB.

        Raises asyncio.IncompleteReadError when the peer closes, ValueError when a message
        is larger than ``max_size``.
        """
        header = await self.reader.readexactly(4)
        length = header[0] | header[1] << 8 | header[2] << 16
        if length > max_size:
            raise ValueError(f"message of more than {max_size} bytes")
        body = await self.reader.readexactly(length) if length else b""
        if length < MAX_PAYLOAD:
            # Nearly every message is one packet: no lists, and the payload is not copied.
            return Message(body, header + body, header[3], header[3])
        return await self._read_continued(header, body, max_size)

    async def _read_continued(self, header: bytes, body: bytes, max_size: int) -> Message:
        """The rest of a message of 16 MiB or more, whose first packet has been read."""
        raw_parts = [header + body]
        payload_parts = [body]
        first_seq = seq = header[3]
        size = length = len(body)
        while length == MAX_PAYLOAD:
            header = await self.reader.readexactly(4)
            length = header[0] | header[1] << 8 | header[2] << 16
            seq = header[3]
            size += length
            if size > max_size:
                raise ValueError(f"message of more than {max_size} bytes")
            body = await self.reader.readexactly(length) if length else b""
            raw_parts.append(header + body)
            payload_parts.append(body)
        return Message(b"".join(payload_parts), b"".join(raw_parts), first_seq, seq)

    def write(self, payload: bytes, seq: int) -> int:
        """Frame and buffer a payload; return the sequence id that follows it."""
        data = frame(payload, seq)
        self.writer.write(data)
        return (seq + len(payload) // MAX_PAYLOAD + 1) & 0xFF

    def write_raw(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def must_drain(self) -> bool:
        """Whether a write must be followed by drain(): only when the transport kept some
        of it, or is closing (drain then raises for the lost peer).

        A small write on a live socket usually goes out at once, leaving nothing buffered;
        skipping drain() then saves its three coroutines, which the per-command path
        would pay twice.
        """
        transport = self._transport
        return bool(transport.get_write_buffer_size()) or transport.is_closing()

    async def drain(self) -> None:
        await self.writer.drain()

    async def send(self, payload: bytes, seq: int) -> int:
        next_seq = self.write(payload, seq)
        await self.writer.drain()
        return next_seq

    async def start_tls(
        self, context: ssl.SSLContext, *, server_side: bool, hostname: str | None = None
    ) -> None:
        """Upgrade the connection to TLS in place (the reader and writer keep working)."""
        if server_side:
            await self._start_server_tls(context)
        else:
            await self.writer.start_tls(context, server_hostname=hostname)
        self._transport = self.writer.transport

    async def _start_server_tls(self, context: ssl.SSLContext) -> None:
        """A client sends its TLS ClientHello right behind the SSLRequest, so the reader
        may already hold it; asyncio's start_tls strands such bytes (cpython gh-142352),
        and so does uvloop's: the handshake would hang until the login timeout (and
        plaintext left in the reader would later be read as if it came through TLS).

        So: stop reading the socket, take what the reader holds, start the upgrade, and
        hand those bytes to the TLS protocol once start_tls has installed it. Both loops
        install it synchronously and run its connection_made and resume reading one loop
        iteration later, so the early bytes come first in its input either way (this
        does not patch the transport: uvloop's, a Cython class, cannot be patched)."""
        # A socket transport reads too, whatever StreamWriter's annotation says.
        transport = cast(asyncio.Transport, self.writer.transport)
        transport.pause_reading()  # nothing more may land in the plaintext reader
        buffer: bytearray = getattr(self.reader, "_buffer", bytearray())
        early = bytes(buffer)
        buffer.clear()
        if not early:
            await self.writer.start_tls(context)
            return
        plaintext = transport.get_protocol()
        upgrade = asyncio.ensure_future(self.writer.start_tls(context))
        try:
            # Usually one iteration: start_tls installs its protocol in its first step.
            while transport.get_protocol() is plaintext and not upgrade.done():  # noqa: ASYNC110
                await asyncio.sleep(0)
        except BaseException:
            upgrade.cancel()
            raise
        if not upgrade.done():
            _feed(transport.get_protocol(), early)
        await upgrade

    @property
    def is_tls(self) -> bool:
        return self.writer.get_extra_info("ssl_object") is not None

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()

    async def wait_closed(self, timeout: float = 2.0) -> None:
        try:
            await asyncio.wait_for(self.writer.wait_closed(), timeout)
        except TimeoutError:
            # A TLS peer that never answers close_notify: asyncio would keep the socket
            # for its 30 s shutdown timeout (and leak it if the loop ends first).
            self.writer.transport.abort()
        except (OSError, ssl.SSLError):
            pass


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Give ``data`` to a protocol as if its transport had read it: through get_buffer
    and buffer_updated (asyncio's and uvloop's TLS protocols both have them; uvloop's is
    no asyncio.BufferedProtocol subclass), else data_received."""
    get_buffer = getattr(protocol, "get_buffer", None)
    if get_buffer is None:
        protocol.data_received(data)  # type: ignore[attr-defined]
        return
    view = memoryview(data)
    while view:
        target = memoryview(get_buffer(len(view)))
        size = min(len(target), len(view))
        target[:size] = view[:size]
        protocol.buffer_updated(size)  # type: ignore[attr-defined]
        view = view[size:]
