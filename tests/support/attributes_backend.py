"""A MySQL 8 stand-in for query attributes: MariaDB behind a relay that offers them.

MariaDB has no query attributes (CLIENT_QUERY_ATTRIBUTES, MySQL 8.0.23+) and no MySQL 8
server installs here, so the tests of the proxy's handling put this relay between the
proxy and the test MariaDB. It offers the flag in the greeting, takes it off the
handshake response, and on a connection that asked for it records every command as it
arrives (what the proxy relayed or wrote), then gives MariaDB the command without its
attributes, as a MySQL 8 server reads it: a COM_QUERY's text, a COM_STMT_EXECUTE's
parameters. Its reading of the attribute block is its own, independent of the proxy's
(proxy.wire.query_attributes): it knows the types the tests send, strings and BIGINTs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

QUERY_ATTRIBUTES = 1 << 27
PARAMETER_COUNT_AVAILABLE = 0x08
LONGLONG = 0x08
_BIGINT_SIZE = 8


def _lenenc(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


@dataclass
class _Values:
    """A block of named values: types (without names) and the bytes of each value."""

    nulls: list[bool]
    types: list[bytes]
    values: list[bytes]


def _read_values(data: bytes, pos: int, count: int) -> tuple[_Values, int]:
    bitmap = data[pos : pos + (count + 7) // 8]
    pos += len(bitmap)
    if data[pos] != 1:
        raise ValueError("the stand-in reads only blocks with their types")
    pos += 1
    nulls = [bool(bitmap[i // 8] & (1 << (i % 8))) for i in range(count)]
    types = []
    for _ in range(count):
        types.append(data[pos : pos + 2])
        length, pos = _lenenc(data, pos + 2)
        pos += length  # the name
    values = []
    for kind, null in zip(types, nulls, strict=True):
        start = pos
        if not null:
            if kind[0] == LONGLONG:
                pos += _BIGINT_SIZE
            else:
                length, pos = _lenenc(data, pos)
                pos += length
        values.append(data[start:pos])
    return _Values(nulls, types, values), pos


def strip_query(payload: bytes) -> bytes:
    """A COM_QUERY with attributes as the server reads it: its text alone."""
    count, pos = _lenenc(payload, 1)
    _, pos = _lenenc(payload, pos)  # the number of sets
    if count:
        _, pos = _read_values(payload, pos, count)
    return b"\x03" + payload[pos:]


def strip_execute(payload: bytes, params: int) -> bytes:
    """A COM_STMT_EXECUTE with attributes as MariaDB reads one: the statement's
    ``params`` values alone, no count, no names."""
    head, flags = payload[:10], payload[5]
    if not params and not flags & PARAMETER_COUNT_AVAILABLE:
        return payload
    count, pos = _lenenc(payload, 10)
    head = head[:5] + bytes((flags & ~PARAMETER_COUNT_AVAILABLE,)) + head[6:]
    if not params:
        return head
    block, _ = _read_values(payload, pos, count)
    bitmap = bytearray((params + 7) // 8)
    for index in range(params):
        bitmap[index // 8] |= block.nulls[index] << (index % 8)
    return b"".join((head, bytes(bitmap), b"\x01", *block.types[:params], *block.values[:params]))


@dataclass
class AttributesBackend:
    """The relay, serving on its own loop in a thread; ``commands`` holds the payloads
    of every command that arrived on a connection with query attributes."""

    backend_host: str
    backend_port: int
    port: int = 0
    commands: list[bytes] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def start(self) -> AttributesBackend:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the query-attributes stand-in did not start")
        return self

    def stop(self) -> None:
        """Stop listening, end the open connections, and wait for the loop to finish."""
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        if self._thread is not None:
            self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._server.serve_forever()
        finally:
            self._close_all()  # the connections still open when stop() ends the loop

    def _close_all(self) -> None:
        for writer in self._writers:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Each socket is closed here or when the loop ends (_main), never left to the
        # garbage collector, which would report it in whichever later test it runs in.
        mine = [writer]
        self._writers.add(writer)
        tasks: list[asyncio.Future[None]] = []
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.backend_host, self.backend_port
            )
            mine.append(up_writer)
            self._writers.add(up_writer)
            link = _Link()
            tasks += [
                asyncio.ensure_future(self._downstream(up_reader, writer, link)),
                asyncio.ensure_future(self._upstream(reader, up_writer, link)),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:  # each side's end (EOF, a reset) retrieved
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for own in mine:
                own.close()
                self._writers.discard(own)

    async def _downstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        """Server to proxy: the greeting offers the flag; PREPARE answers are noted."""
        first = True
        while True:
            seq, payload = await _read_packet(reader)
            if first:
                payload = _offer_attributes(payload)
                first = False
            elif link.preparing and seq == 1:
                link.preparing = False
                if payload[:1] == b"\x00":
                    statement = int.from_bytes(payload[1:5], "little")
                    link.params[statement] = int.from_bytes(payload[7:9], "little")
            _write_packet(writer, seq, payload)
            await writer.drain()

    async def _upstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        """Proxy to server: the flag off the handshake response; commands recorded and
        given to MariaDB without their attributes."""
        seq, payload = await _read_packet(reader)
        caps = int.from_bytes(payload[0:4], "little")
        link.attributes = bool(caps & QUERY_ATTRIBUTES)
        payload = (caps & ~QUERY_ATTRIBUTES).to_bytes(4, "little") + payload[4:]
        _write_packet(writer, seq, payload)
        while True:
            seq, payload = await _read_packet(reader)
            if seq == 0 and link.attributes:
                self.commands.append(payload)
                payload = link.strip(payload)
            _write_packet(writer, seq, payload)
            await writer.drain()


@dataclass
class _Link:
    attributes: bool = False
    preparing: bool = False
    params: dict[int, int] = field(default_factory=dict)

    def strip(self, payload: bytes) -> bytes:
        command = payload[:1]
        self.preparing = command == b"\x16"
        if command == b"\x03":
            return strip_query(payload)
        if command == b"\x17":
            statement = int.from_bytes(payload[1:5], "little")
            return strip_execute(payload, self.params.get(statement, 0))
        return payload


def _offer_attributes(greeting: bytes) -> bytes:
    """HandshakeV10 with CLIENT_QUERY_ATTRIBUTES in its upper capability bytes."""
    pos = greeting.index(b"\x00", 1) + 1 + 4 + 8 + 1 + 2 + 1 + 2
    upper = int.from_bytes(greeting[pos : pos + 2], "little") | QUERY_ATTRIBUTES >> 16
    return greeting[:pos] + upper.to_bytes(2, "little") + greeting[pos + 2 :]


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(4)
    length = int.from_bytes(header[:3], "little")
    return header[3], await reader.readexactly(length)


def _write_packet(writer: asyncio.StreamWriter, seq: int, payload: bytes) -> None:
    writer.write(len(payload).to_bytes(3, "little") + bytes((seq,)) + payload)
