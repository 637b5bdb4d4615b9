"""Packet I/O on a protocol of the proxy's own: the only place the protocol meets sockets.

Why not asyncio's streams: every relayed statement crosses this module four times (read
the command, write it to the backend, read the response, write it to the client), and a
StreamReader pays two coroutines, a second protocol layer and a buffer copy for each
``readexactly`` (a command is two). Here the stream is itself the socket's protocol:
``data_received`` appends to one buffer, and the readers take whole packets
(``read_message``) or everything buffered (``read_chunk``, the relay's) without a
suspension when the bytes are already there, and with one future when they are not.

Flow control, both ways, so that a session's buffering stays bounded:

- reading: while no reader waits, the socket is paused once more than ``READ_LIMIT``
  bytes are buffered (a client pipelining commands, a backend answering a client that
  reads slowly); a reader that needs more resumes it. A connection so holds at most
  ``READ_LIMIT`` plus one socket read, or the one message being read.
- writing: the transport calls ``pause_writing`` past its high-water mark; ``drain``
  then waits for ``resume_writing``.

Two hooks let the relay answer a statement without waking the session's task
(proxy.transport.relay.Relay.detach): ``divert`` offers the next bytes to arrive to a callback
before they are buffered, and ``interrupt`` makes a waiting ``read_message`` give the
task back (ReadInterrupted) when the callback cannot finish alone.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from proxy.wire.packets import MAX_PAYLOAD, frame

#: Buffered bytes past which a connection with no waiting reader stops reading its socket
#: (asyncio's streams, which the proxy used before, paused at twice their 256 KiB limit).
READ_LIMIT = 1 << 18

#: Where pass_message puts a message's bytes (e.g. a write to the backend and its drain).
Sink = Callable[[bytes | bytearray], Awaitable[None]]

#: What a server runs for each accepted connection.
OnConnected = Callable[["PacketStream"], Coroutine[Any, Any, None]]


class Offer(Enum):
    """What a diverted sink may answer besides True (taken) and False (left to the
    readers): see ``PacketStream.divert``."""

    MORE = "more"


#: A sink's answer for bytes that begin what it waits for: the stream holds them, stays
#: diverted, and offers them again with the next bytes to arrive.
MORE = Offer.MORE
#: A diverted sink (PacketStream.divert).
Divert = Callable[[bytes], bool | Offer]


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

    @classmethod
    def of_packet(cls, raw: bytes) -> Message:
        """The message one framed packet carries (header and payload)."""
        return cls(raw[4:], raw, raw[3], raw[3])


class MessageTooLarge(ValueError):
    """read_message met a message larger than its ``max_size`` in its first packet; nothing
    of the message has been consumed: ``read_head`` and ``pass_message`` take it then."""

    def __init__(self, max_size: int) -> None:
        super().__init__(f"message of more than {max_size} bytes")


class ReadInterrupted(Exception):
    """read_message was interrupted (PacketStream.interrupt): the reading task is needed
    elsewhere; the stream and its buffer are intact."""


class PacketStream(asyncio.Protocol):
    """Reads and writes MySQL packets on one connection; the socket's protocol too.

    One task reads at a time (the session's); writes go straight to the transport.
    """

    _transport: asyncio.Transport  # set by connection_made, replaced by start_tls

    def __init__(self, on_connected: OnConnected | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_connected = on_connected
        self._task: asyncio.Task[None] | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None  # the reader's, when it waits
        self._eof = False
        self._error: Exception | None = None
        self._read_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._lost = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._over_tls = False
        self._sink: Divert | None = None  # see divert
        self._held = b""  # what the sink answered MORE to
        self._express: Callable[[bytes], bool] | None = None  # see offer_packets
        self._interrupted = False
        #: Called when the peer closes its side (a session notices a client that left
        #: mid-statement at once rather than at its watchdog's next round).
        self.on_eof: Callable[[], None] | None = None

    # -- the protocol: what the loop calls --------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if self._on_connected is not None:
            self._task = self._loop.create_task(self._on_connected(self))
            self._task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        """A served connection closes when its task ends, however it ends (a session
        closes its own; this covers a task that fails first), and an exception the task
        let out is reported, not lost."""
        if not task.cancelled() and task.exception() is not None:
            self._loop.call_exception_handler(
                {
                    "message": "unhandled exception serving a connection",
                    "exception": task.exception(),
                }
            )
        self.close()

    def data_received(self, data: bytes) -> None:
        sink = self._sink
        if sink is not None:
            self._sink = None
            if self._held:
                data, self._held = self._held + data, b""
            taken = sink(data)
            if taken is MORE:
                self._held, self._sink = data, sink
                return
            if taken:
                return
        waiter = self._waiter
        if (
            self._express is not None
            and waiter is not None
            and not self._buffer
            and _one_packet(data)
            and self._express(data)
        ):
            return
        self._buffer += data
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        elif not self._read_paused and len(self._buffer) > READ_LIMIT:
            self._read_paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._offer_end()
        self._wake_reader()
        self._tell_eof()
        # Keep a plain socket open for the writes still to come; TLS cannot half-close.
        return not self._over_tls

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = self._lost = True
        if exc is not None:
            self._error = exc
        self._offer_end()
        self._wake_reader()
        self._wake_drainers()
        if not self._closed.done():
            self._closed.set_result(None)
        self._tell_eof()

    def _tell_eof(self) -> None:
        on_eof, self.on_eof = self.on_eof, None
        if on_eof is not None:
            on_eof()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drainers()

    def _offer_end(self) -> None:
        """Tell a diverted reader that nothing more will come (an empty offer); what
        it held back goes to the readers."""
        sink, self._sink = self._sink, None
        self._give_back_held()
        if sink is not None:
            sink(b"")

    def _give_back_held(self) -> None:
        held, self._held = self._held, b""
        if held:
            self._buffer[0:0] = held  # (before anything buffered since: none while diverted)

    def _wake_reader(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- reading ----------------------------------------------------------------------

    async def read_message(self, max_size: int = 1 << 30) -> Message:
        """Read one logical message, joining packets split at 16 MiB.

        Raises asyncio.IncompleteReadError when the peer closes (or the error that ended
        the connection), MessageTooLarge when the first packet is larger than ``max_size``
        (nothing consumed), ValueError when a later one takes the message past it,
        ReadInterrupted after ``interrupt``.
        """
        while (raw := self._take_packet(max_size)) is None:
            if self._interrupted:
                self._interrupted = False
                raise ReadInterrupted
            await self._more_data()
        if len(raw) - 4 < MAX_PAYLOAD:
            # Nearly every message is one packet: no lists, one copy of the payload.
            return Message.of_packet(raw)
        return await self._read_continued(raw, max_size)

    async def _read_continued(self, first: bytes, max_size: int) -> Message:
        """The rest of a message of 16 MiB or more, whose first packet has been read."""
        raw_parts = [first]
        payload_parts = [first[4:]]
        size = len(first) - 4
        raw = first
        while len(raw) - 4 == MAX_PAYLOAD:
            try:
                raw = await self._read_packet(max_size - size)
            except MessageTooLarge as exc:  # packets consumed: no longer the head's case
                raise ValueError(str(exc)) from None
            size += len(raw) - 4
            raw_parts.append(raw)
            payload_parts.append(raw[4:])
        return Message(b"".join(payload_parts), b"".join(raw_parts), first[3], raw[3])

    async def _read_packet(self, max_size: int) -> bytes:
        """The next whole packet, header included, however long it takes to arrive."""
        while (raw := self._take_packet(max_size)) is None:
            await self._more_data()
        return raw

    def _take_packet(self, max_size: int) -> bytes | None:
        """The next whole packet, header included, out of the buffer; None until it is
        all there. Raises ValueError for a payload larger than ``max_size``."""
        buffer = self._buffer
        size = len(buffer)
        if size < 4:
            return None
        length = buffer[0] | buffer[1] << 8 | buffer[2] << 16
        if length > max_size:
            raise MessageTooLarge(max_size)
        end = 4 + length
        if size < end:
            return None
        if size == end:
            raw = bytes(buffer)
            buffer.clear()
        else:
            raw = bytes(memoryview(buffer)[:end])
            del buffer[:end]
        if self._read_paused and len(buffer) <= READ_LIMIT:
            self._resume_reading()
        return raw

    async def read_head(self, size: int) -> bytes:
        """The first ``size`` payload bytes of the next message (fewer if its first packet
        is shorter), left in the buffer: a look at a message too large to read whole
        (MessageTooLarge) before deciding where it goes (``pass_message``)."""
        while True:
            buffer = self._buffer
            if len(buffer) >= 4:
                length = buffer[0] | buffer[1] << 8 | buffer[2] << 16
                end = 4 + min(size, length)
                if len(buffer) >= end:
                    return bytes(memoryview(buffer)[4:end])
            await self._more_data()

    async def pass_message(self, sink: Sink | None) -> tuple[int, int]:
        """Hand the next message, packet headers included, to ``sink`` in the chunks its
        bytes arrive in, or drop it (None); return its last sequence id and its payload
        size.

        Memory stays bounded whatever the message's size: a chunk is at most what the
        buffer held (READ_LIMIT plus one socket read), and while ``sink`` waits (for a
        transport to drain) this socket pauses past READ_LIMIT, as in data_received.
        Raises as read_message when this peer goes, and what ``sink`` raises.
        """
        last_seq, size, packet_left, final = 0, 0, 0, False
        while True:
            if not packet_left:
                if final:
                    return last_seq, size
                while len(self._buffer) < 4:
                    await self._more_data()
                header = self._buffer
                length = header[0] | header[1] << 8 | header[2] << 16
                last_seq, final = header[3], length < MAX_PAYLOAD
                size += length
                packet_left = 4 + length
            chunk = await self._take_chunk(packet_left)
            packet_left -= len(chunk)
            if sink is not None:
                await sink(chunk)

    async def _take_chunk(self, limit: int) -> bytes | bytearray:
        """Up to ``limit`` buffered bytes, waiting for one at least."""
        while not self._buffer:
            await self._more_data()
        if len(self._buffer) <= limit:
            chunk: bytes | bytearray = self._buffer
            self._buffer = bytearray()  # handed over whole: no copy
        else:
            chunk = bytes(memoryview(self._buffer)[:limit])
            del self._buffer[:limit]
        if self._read_paused and len(self._buffer) <= READ_LIMIT:
            self._resume_reading()
        return chunk

    def payload_now(self) -> bytes | None:
        """The next message's payload if it is already buffered whole in one packet,
        else None (and nothing consumed: read_message then). Lets a reader of many
        small rows take them without an await each."""
        buffer = self._buffer
        if len(buffer) < 4:
            return None
        length = buffer[0] | buffer[1] << 8 | buffer[2] << 16
        end = 4 + length
        if length >= MAX_PAYLOAD or len(buffer) < end:
            return None
        payload = bytes(memoryview(buffer)[4:end])
        del buffer[:end]
        if self._read_paused and len(buffer) <= READ_LIMIT:
            self._resume_reading()
        return payload

    async def read_chunk(self) -> bytes | bytearray:
        """Everything the peer has sent so far, at least one byte; empty once it has
        closed. The relay's read: a response goes on in the chunks it arrived in."""
        while not self._buffer:
            if self._eof and self._error is None:
                return b""
            await self._more_data()
        chunk = self._buffer
        self._buffer = bytearray()  # handed over whole: no copy
        if self._read_paused:
            self._resume_reading()
        return chunk

    def _more_data(self) -> asyncio.Future[None]:
        """A future that completes when more bytes arrive or the connection ends; raises
        if it has ended. Resumes a paused socket: the reader needs what it holds back."""
        if self._eof:
            if self._error is not None:
                raise self._error
            raise asyncio.IncompleteReadError(bytes(self._buffer), None)
        if self._read_paused:
            self._resume_reading()
        waiter = self._waiter = self._loop.create_future()
        return waiter

    def _resume_reading(self) -> None:
        self._read_paused = False
        self._transport.resume_reading()

    def divert(self, sink: Divert) -> bool:
        """Offer the next bytes to arrive to ``sink`` before buffering them, once: it
        returns True when it has taken them, False to leave them to the buffer and the
        readers as usual, MORE when they begin what it waits for (the stream holds them
        and offers them again with the next bytes, until it answers otherwise); b"" when
        the connection ends instead (what it held goes to the readers). False (and no
        divert) when bytes are already buffered or the peer has closed.

        Why: the relay takes a whole response in the loop's callback, sparing the
        session's task a wake-up per statement (proxy.transport.relay.Relay.detach);
        the ML fast path gathers its key queries' results there (proxy.ml.fastpath.quick)."""
        if self._buffer or self._eof:
            return False
        self._sink = sink
        return True

    def undivert(self) -> None:
        """Stop offering; what the sink held back goes to the readers."""
        self._sink = None
        self._give_back_held()

    def offer_packets(self, express: Callable[[bytes], bool] | None) -> None:
        """Offer ``express`` every arrival that is one whole packet (header included) and
        finds the reader waiting on an empty buffer: it returns True when it has dealt
        with the packet, False to leave it to the reader as usual. None stops the offers.

        Why: the session sends a plain statement to the backend from the client
        socket's callback, sparing its task a wake-up per statement (and the loop an
        iteration between the client's bytes and the backend's)."""
        self._express = express

    def interrupt(self) -> None:
        """Make read_message raise ReadInterrupted instead of waiting (at once if it
        waits, else when it next would): the reading task is needed elsewhere."""
        self._interrupted = True
        self._wake_reader()

    def clear_interrupt(self) -> None:
        self._interrupted = False

    def at_eof(self) -> bool:
        """Whether the peer has closed and every byte it sent has been read."""
        return self._eof and not self._buffer

    # -- writing ----------------------------------------------------------------------

    def write(self, payload: bytes, seq: int) -> int:
        """Frame and buffer a payload; return the sequence id that follows it."""
        self._transport.write(frame(payload, seq))
        return (seq + len(payload) // MAX_PAYLOAD + 1) & 0xFF

    def write_raw(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def must_drain(self) -> bool:
        """Whether a write must be followed by drain(): only when the transport is past
        its high-water mark, or closing (drain then raises for the lost peer).

        Skipping drain() otherwise saves a coroutine, which the per-command path would
        pay twice.
        """
        return self._write_paused or self._transport.is_closing()

    async def drain(self) -> None:
        """Wait while the transport is past its high-water mark (as StreamWriter.drain:
        raises ConnectionResetError, or the error that ended it, once it is lost)."""
        if self._transport.is_closing():
            # Let a pending connection_lost run first, so that a lost peer raises here.
            await asyncio.sleep(0)
        while True:
            if self._error is not None:
                raise self._error
            if self._lost:
                raise ConnectionResetError("Connection lost")
            if not self._write_paused:
                return
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    async def send(self, payload: bytes, seq: int) -> int:
        next_seq = self.write(payload, seq)
        await self.drain()
        return next_seq

    # -- TLS --------------------------------------------------------------------------

    async def start_tls(
        self, context: ssl.SSLContext, *, server_side: bool, hostname: str | None = None
    ) -> None:
        """Upgrade the connection to TLS in place: this protocol then receives the
        decrypted bytes and writes through the TLS transport."""
        await self.drain()
        if server_side:
            transport = await self._start_server_tls(context)
        else:
            transport = await self._upgrade(context, server_side=False, hostname=hostname)
        self._transport = transport
        self._over_tls = True
        self._read_paused = False  # the TLS transport reads from the start

    def _upgrade(
        self, context: ssl.SSLContext, *, server_side: bool, hostname: str | None = None
    ) -> Awaitable[asyncio.Transport]:
        return _checked(
            self._loop.start_tls(
                self._transport,
                self,
                context,
                server_side=server_side,
                server_hostname=hostname,
            )
        )

    async def _start_server_tls(self, context: ssl.SSLContext) -> asyncio.Transport:
        """A client sends its TLS ClientHello right behind the SSLRequest, so the buffer
        may already hold it; the loop's start_tls knows nothing of those bytes (cpython
        gh-142352 for asyncio's streams; uvloop's is the same): the handshake would hang
        until the login timeout (and plaintext left in the buffer would later be read as
        if it came through TLS).

        So: stop reading the socket, take what the buffer holds, start the upgrade, and
        hand those bytes to the TLS protocol once start_tls has installed it. Both loops
        install it synchronously and run its connection_made and resume reading one loop
        iteration later, so the early bytes come first in its input either way (this
        does not patch the transport: uvloop's, a Cython class, cannot be patched)."""
        transport = self._transport
        transport.pause_reading()  # nothing more may land in the plaintext buffer
        early = bytes(self._buffer)
        self._buffer.clear()
        if not early:
            return await self._upgrade(context, server_side=True)
        upgrade = asyncio.ensure_future(self._upgrade(context, server_side=True))
        try:
            # Usually one iteration: start_tls installs its protocol in its first step.
            while transport.get_protocol() is self and not upgrade.done():  # noqa: ASYNC110
                await asyncio.sleep(0)
        except BaseException:
            upgrade.cancel()
            raise
        if not upgrade.done():
            _feed(transport.get_protocol(), early)
        return await upgrade

    @property
    def peer_host(self) -> str:
        """The peer's address (host part; "" for a unix socket peer)."""
        peer = self._transport.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""

    @property
    def is_tls(self) -> bool:
        return self._transport.get_extra_info("ssl_object") is not None

    @property
    def tls_object(self) -> ssl.SSLObject | ssl.SSLSocket | None:
        """The connection's TLS state (None in the clear): its cipher, version..."""
        tls = self._transport.get_extra_info("ssl_object")
        return tls if isinstance(tls, (ssl.SSLObject, ssl.SSLSocket)) else None

    # -- closing ----------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()

    async def wait_closed(self, timeout: float = 2.0) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        except TimeoutError:
            # A TLS peer that never answers close_notify: asyncio would keep the socket
            # for its 30 s shutdown timeout (and leak it if the loop ends first).
            self._transport.abort()


def _one_packet(data: bytes) -> bool:
    """Whether ``data`` is exactly one packet of less than 16 MiB."""
    size = len(data)
    return size >= 4 and data[0] | data[1] << 8 | data[2] << 16 == size - 4 < MAX_PAYLOAD


async def open_connection(host: str, port: int) -> PacketStream:
    """A PacketStream connected to ``host:port``."""
    _, stream = await asyncio.get_running_loop().create_connection(PacketStream, host, port)
    return stream


async def open_unix_connection(path: str) -> PacketStream:
    """A PacketStream connected to the Unix socket at ``path``."""
    _, stream = await asyncio.get_running_loop().create_unix_connection(PacketStream, path)
    return stream


async def start_server(
    on_connected: OnConnected, host: str | None, port: int, **kwargs: Any
) -> asyncio.Server:
    """Listen on ``host:port`` and run ``on_connected(stream)`` as a task for each
    connection (``kwargs`` go to loop.create_server)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: PacketStream(on_connected), host, port, **kwargs)


async def _checked(upgrade: Awaitable[asyncio.Transport | None]) -> asyncio.Transport:
    """start_tls's transport (typeshed allows None, which neither loop returns)."""
    transport = await upgrade
    if transport is None:
        raise ConnectionResetError("the connection closed during the TLS handshake")
    return transport


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
