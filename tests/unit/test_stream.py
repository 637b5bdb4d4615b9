"""PacketStream and the relay's detached commands, bytes through a fake transport.

The stream is the socket's protocol: these tests call its protocol methods the way a loop
would (data_received in arbitrary pieces, eof_received, pause_writing, connection_lost)
and check what the readers see and what reaches the transport, including the flow control
that bounds a session's buffering and the hand-over of a detached command's response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from proxy.transport.relay import Relay
from proxy.transport.stream import (
    MORE,
    READ_LIMIT,
    MessageTooLarge,
    Offer,
    PacketStream,
    ReadInterrupted,
)
from proxy.wire.packets import MAX_PAYLOAD, frame, make_ok
from proxy.wire.scanner import Shape

AUTOCOMMIT = 0x0002
IN_TRANS = 0x0001


class FakeTransport(asyncio.Transport):
    """Records writes and read pauses; closes when asked."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self._reading = True
        self.closing = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        self._reading = True

    def is_reading(self) -> bool:
        return self._reading

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 5))


def connected() -> tuple[PacketStream, FakeTransport]:
    stream = PacketStream()
    transport = FakeTransport()
    stream.connection_made(transport)
    return stream, transport


def query(sql: bytes) -> bytes:
    return frame(b"\x03" + sql, 0)


def text_result(value: bytes) -> bytes:
    """One column, one row, as a server writes it (seq 1 onwards)."""
    definition = b"\x03def\x00\x00\x00\x01a\x00\x0c\x21\x00\x01\x00\x00\x00\xfd\x00\x00\x00\x00\x00"
    eof = b"\xfe\x00\x00" + AUTOCOMMIT.to_bytes(2, "little")
    payloads = [b"\x01", definition, eof, bytes([len(value)]) + value, eof]
    return b"".join(frame(p, seq) for seq, p in enumerate(payloads, start=1))


def record(offered: list[bytes], raw: bytes) -> bool:
    """An offer callback's bookkeeping: keeps ``raw``, accepts it."""
    offered.append(raw)
    return True


# -- reading ------------------------------------------------------------------------------


def test_a_message_cut_anywhere_is_read_whole() -> None:
    async def scenario() -> None:
        stream, _ = connected()
        data = query(b"SELECT 1") + query(b"SELECT 2")
        reading = asyncio.ensure_future(stream.read_message())
        for i in range(len(data)):  # a byte at a time
            stream.data_received(data[i : i + 1])
            await asyncio.sleep(0)
        first = await reading
        second = await stream.read_message()  # already buffered: no wait
        assert (first.payload, second.payload) == (b"\x03SELECT 1", b"\x03SELECT 2")
        assert first.raw == query(b"SELECT 1") and first.next_seq == 1

    run(scenario)


def test_a_message_of_16_mib_and_more_is_joined() -> None:
    async def scenario() -> None:
        stream, _ = connected()
        payload = b"\x03" + b"x" * (1 << 24)
        stream.data_received(frame(payload, 0))
        message = await stream.read_message()
        assert message.payload == payload and message.raw == frame(payload, 0)
        assert (message.first_seq, message.last_seq) == (0, 1)

    run(scenario)


def test_the_end_of_the_connection_ends_reads() -> None:
    async def scenario() -> None:
        stream, _ = connected()
        stream.data_received(query(b"SELECT 1")[:5])
        stream.eof_received()
        with pytest.raises(asyncio.IncompleteReadError):
            await stream.read_message()
        assert not stream.at_eof()  # the cut message is still there
        reset, _ = connected()
        reset.connection_lost(ConnectionResetError("reset"))
        with pytest.raises(ConnectionResetError):
            await reset.read_chunk()

    run(scenario)


def test_a_message_larger_than_allowed_is_refused() -> None:
    async def scenario() -> None:
        stream, _ = connected()
        stream.data_received(query(b"x" * 100))
        with pytest.raises(ValueError, match="more than 10 bytes"):
            await stream.read_message(max_size=10)

    run(scenario)


class Collector:
    """A pass_message sink that keeps what it gets; ``gate`` cleared: it waits (a drain)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, chunk: bytes | bytearray) -> None:
        self.chunks.append(bytes(chunk))
        await self.gate.wait()


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 7, 11, 60, 104])
def test_a_message_over_the_read_limit_is_passed_on_as_it_arrives(cut: int) -> None:
    """Too large to read whole: nothing consumed, a look at its head, then its packets go
    to the sink exactly as they came, however they arrive, and the next message stays."""

    async def scenario() -> None:
        stream, _ = connected()
        big, after = query(b"y" * 100), query(b"SELECT 2")
        data = big + after
        reading = asyncio.ensure_future(stream.read_message(max_size=50))
        stream.data_received(data[:cut])
        await asyncio.sleep(0)
        stream.data_received(data[cut:])
        with pytest.raises(MessageTooLarge):
            await reading
        assert await stream.read_head(1000) == big[4:]  # nothing of it consumed
        stream, _ = connected()
        head = asyncio.ensure_future(stream.read_head(8))
        passing = asyncio.ensure_future(pass_after(stream, head))
        for start in range(0, len(data), cut):
            stream.data_received(data[start : start + cut])
            await asyncio.sleep(0)
        assert await head == b"\x03yyyyyyy"
        sink, (last_seq, size) = await passing
        assert b"".join(sink.chunks) == big and (last_seq, size) == (0, 101)
        assert (await stream.read_message()).raw == after

    async def pass_after(
        stream: PacketStream, head: asyncio.Future[bytes]
    ) -> tuple[Collector, tuple[int, int]]:
        await head
        sink = Collector()
        return sink, await stream.pass_message(sink)

    run(scenario)


def test_a_message_of_several_packets_is_passed_or_dropped_whole() -> None:
    async def scenario() -> None:
        payload = b"\x03" + b"z" * (2 * MAX_PAYLOAD)  # 0xFFFFFF, 0xFFFFFF, then 2 bytes
        data = frame(payload, 0) + query(b"SELECT 3")
        for sink in (Collector(), None):
            stream, _ = connected()
            stream.data_received(data[: MAX_PAYLOAD + 2])  # cut inside the next header
            passing = asyncio.ensure_future(stream.pass_message(sink))
            for start in range(MAX_PAYLOAD + 2, len(data), 1 << 20):
                await asyncio.sleep(0)
                stream.data_received(data[start : start + (1 << 20)])
            assert await passing == (2, len(payload))
            if sink is not None:
                assert b"".join(sink.chunks) == frame(payload, 0)
            assert (await stream.read_message()).payload == b"\x03SELECT 3"

    run(scenario)


def test_a_passed_message_holds_at_most_the_read_limit_while_the_sink_waits() -> None:
    async def scenario() -> None:
        stream, transport = connected()
        sink = Collector()
        sink.gate.clear()  # the backend's transport is full
        passing = asyncio.ensure_future(stream.pass_message(sink))
        piece = 1 << 16
        data = frame(b"\x03" + b"w" * (16 * READ_LIMIT), 0)
        offset = 0
        while transport.is_reading():
            stream.data_received(data[offset : offset + piece])
            offset += piece
            await asyncio.sleep(0)
        held = offset - sum(map(len, sink.chunks))
        assert held <= READ_LIMIT + piece  # paused: the limit and one socket read
        sink.gate.set()
        while offset < len(data):
            await asyncio.sleep(0)
            if transport.is_reading():
                stream.data_received(data[offset : offset + piece])
                offset += piece
        assert await passing == (0, len(data) - 4)
        assert b"".join(sink.chunks) == data

    run(scenario)


def test_reading_pauses_past_the_limit_only_while_nobody_reads() -> None:
    async def scenario() -> None:
        stream, transport = connected()
        command = query(b"SELECT 1")
        pipelined = command * (READ_LIMIT // 10)
        stream.data_received(pipelined)
        assert not transport.is_reading()  # a client pipelining faster than it is served
        read = 0
        while not transport.is_reading():
            await stream.read_message()
            read += 1
        left = len(pipelined) - read * len(command)  # resumed at the limit
        assert READ_LIMIT - len(command) < left <= READ_LIMIT
        stream, transport = connected()
        big = frame(b"\x03" + b"x" * (3 * READ_LIMIT), 0)
        reading = asyncio.ensure_future(stream.read_message())
        await asyncio.sleep(0)
        for start in range(0, len(big), READ_LIMIT // 2):  # a reader waits: no pause
            stream.data_received(big[start : start + READ_LIMIT // 2])
            assert transport.is_reading()
            await asyncio.sleep(0)
        assert len((await reading).payload) == 1 + 3 * READ_LIMIT

    run(scenario)


def test_a_chunk_read_takes_everything_buffered() -> None:
    async def scenario() -> None:
        stream, _ = connected()
        stream.data_received(b"abc")
        stream.data_received(b"def")
        assert await stream.read_chunk() == b"abcdef"
        stream.eof_received()
        assert await stream.read_chunk() == b""

    run(scenario)


def test_an_interrupted_read_leaves_the_buffer_as_it_was() -> None:
    async def scenario() -> None:
        stream, _ = connected()
        stream.data_received(query(b"SELECT 1")[:3])
        reading = asyncio.ensure_future(stream.read_message())
        await asyncio.sleep(0)
        stream.interrupt()
        with pytest.raises(ReadInterrupted):
            await reading
        stream.data_received(query(b"SELECT 1")[3:])
        assert (await stream.read_message()).payload == b"\x03SELECT 1"

    run(scenario)


def test_a_whole_packet_for_a_waiting_reader_is_offered_first() -> None:
    async def scenario() -> None:
        stream, _ = connected()
        offered: list[bytes] = []
        stream.offer_packets(lambda raw: record(offered, raw) and raw.endswith(b"1"))
        reading = asyncio.ensure_future(stream.read_message())
        await asyncio.sleep(0)
        stream.data_received(query(b"SELECT 1"))  # taken: the reader goes on waiting
        await asyncio.sleep(0)
        assert offered == [query(b"SELECT 1")] and not reading.done()
        stream.data_received(query(b"SELECT 2"))  # declined: the reader gets it
        assert (await reading).payload == b"\x03SELECT 2"
        assert offered == [query(b"SELECT 1"), query(b"SELECT 2")]

    run(scenario)


@pytest.mark.parametrize(
    "arrival",
    [
        pytest.param(query(b"SELECT 1")[:6], id="part-of-a-packet"),
        pytest.param(query(b"SELECT 1") + query(b"SELECT 2"), id="two-packets"),
        pytest.param(b"\x01\x00", id="part-of-a-header"),
    ],
)
def test_only_one_whole_packet_is_offered(arrival: bytes) -> None:
    async def scenario() -> None:
        stream, _ = connected()
        offered: list[bytes] = []
        stream.offer_packets(lambda raw: record(offered, raw))
        reading = asyncio.ensure_future(stream.read_message())
        await asyncio.sleep(0)
        stream.data_received(arrival)
        await asyncio.sleep(0)
        assert offered == []
        reading.cancel()

    run(scenario)


def test_nothing_is_offered_behind_buffered_bytes_or_without_a_waiting_reader() -> None:
    async def scenario() -> None:
        stream, _ = connected()
        offered: list[bytes] = []
        stream.offer_packets(lambda raw: record(offered, raw))
        stream.data_received(query(b"SELECT 1"))  # nobody reads yet: buffered
        reading = asyncio.ensure_future(stream.read_message())
        assert (await reading).payload == b"\x03SELECT 1"
        stream.data_received(query(b"SELECT 2")[:4])
        reading = asyncio.ensure_future(stream.read_message())
        await asyncio.sleep(0)
        stream.data_received(query(b"SELECT 3"))  # a reader waits, but behind bytes
        await asyncio.sleep(0)
        assert offered == []
        reading.cancel()

    run(scenario)


# -- writing ------------------------------------------------------------------------------


def test_drain_waits_while_the_transport_is_past_its_high_water_mark() -> None:
    async def scenario() -> None:
        stream, _ = connected()
        assert not stream.must_drain()
        stream.pause_writing()
        assert stream.must_drain()
        draining = asyncio.ensure_future(stream.drain())
        await asyncio.sleep(0)
        assert not draining.done()
        stream.resume_writing()
        await draining
        stream.pause_writing()
        draining = asyncio.ensure_future(stream.drain())
        await asyncio.sleep(0)
        stream.connection_lost(None)
        with pytest.raises(ConnectionResetError):
            await draining

    run(scenario)


# -- detached commands ----------------------------------------------------------------------


def relay_pair() -> tuple[Relay, FakeTransport, FakeTransport, list[int], PacketStream]:
    client, client_transport = connected()
    backend, backend_transport = connected()
    settled: list[int] = []
    return (
        Relay(client, backend, settled.append),
        client_transport,
        backend_transport,
        settled,
        client,
    )


def test_a_whole_result_goes_to_the_client_without_the_task() -> None:
    async def scenario() -> None:
        relay, client_transport, backend_transport, settled, _ = relay_pair()
        command = query(b"SELECT 'a'")
        assert relay.detach(command)
        assert backend_transport.written == [command]
        relay.backend.data_received(text_result(b"a"))
        assert client_transport.written == [text_result(b"a")]
        assert settled == [AUTOCOMMIT]
        relay.backend.data_received(b"late")  # the divert was for one response only
        assert await relay.backend.read_chunk() == b"late"

    run(scenario)


def test_a_result_in_pieces_is_handed_back_to_the_task() -> None:
    async def scenario() -> None:
        relay, client_transport, _, settled, client = relay_pair()
        response = text_result(b"b")
        assert relay.detach(query(b"SELECT 'b'"))
        reading = asyncio.ensure_future(client.read_message())
        await asyncio.sleep(0)
        relay.backend.data_received(response[:7])
        with pytest.raises(ReadInterrupted):  # the task is needed
            await reading
        relay.take_back()
        relaying = asyncio.ensure_future(relay.relay(Shape.RESULT))
        await asyncio.sleep(0)
        relay.backend.data_received(response[7:])
        scanner = await relaying
        assert b"".join(client_transport.written) == response and scanner.done
        assert not settled

    run(scenario)


def test_the_backend_closing_hands_the_response_back() -> None:
    async def scenario() -> None:
        relay, _, _, settled, client = relay_pair()
        assert relay.detach(query(b"SELECT SLEEP(1)"))
        relay.backend.connection_lost(None)
        with pytest.raises(ReadInterrupted):
            await client.read_message()
        assert not settled

    run(scenario)


def test_a_command_is_not_detached_behind_unread_bytes() -> None:
    async def scenario() -> None:
        relay, _, backend_transport, _, _ = relay_pair()
        relay.backend.data_received(frame(make_ok(IN_TRANS), 1))
        assert not relay.detach(query(b"SELECT 1"))
        assert backend_transport.written == []  # nothing sent: relay() sends it

    run(scenario)


# --- a sink that gathers (MORE) ---------------------------------------------------------


def gatherer(whole: bytes, offers: list[bytes], taken: bool = True) -> Callable[[bytes], Any]:
    """A sink that waits for ``whole``: MORE for its start, then ``taken``."""

    def sink(data: bytes) -> bool | Offer:
        offers.append(data)
        if data and whole.startswith(data) and data != whole:
            return MORE
        return taken

    return sink


@pytest.mark.parametrize("pieces", [1, 2, 3, 7])
def test_a_sink_gathers_what_arrives_in_pieces(pieces: int) -> None:
    async def scenario() -> None:
        stream, _ = connected()
        whole = text_result(b"gathered")
        offers: list[bytes] = []
        assert stream.divert(gatherer(whole, offers))
        size = -(-len(whole) // pieces)
        for at in range(0, len(whole), size):
            stream.data_received(whole[at : at + size])
        assert offers[-1] == whole and len(offers) == pieces  # each offer: all so far
        stream.data_received(b"late")  # taken: the divert is over
        assert await stream.read_chunk() == b"late"

    run(scenario)


@pytest.mark.parametrize("how", ["left", "undivert", "eof"])
def test_what_a_sink_gathered_goes_to_the_readers_in_order(how: str) -> None:
    """A sink that leaves the bytes (False), a task that takes the statement back
    (undivert), or the peer's end: every byte held reaches the readers, in order."""

    async def scenario() -> None:
        stream, _ = connected()
        whole = text_result(b"in order")
        offers: list[bytes] = []
        assert stream.divert(gatherer(whole, offers, taken=False))
        stream.data_received(whole[:5])
        stream.data_received(whole[5:9])
        if how == "left":
            stream.data_received(whole[9:])
        elif how == "undivert":
            stream.undivert()
            stream.data_received(whole[9:])
        else:
            stream.eof_received()
            assert offers[-1] == b""
        expected = whole if how != "eof" else whole[:9]
        assert await stream.read_chunk() == expected

    run(scenario)
