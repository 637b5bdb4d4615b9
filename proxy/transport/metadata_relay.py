"""Column definitions for a client that caches result metadata, when the backend leaves
them out of an ML prepared statement's result.

With MARIADB_CLIENT_CACHE_METADATA a client keeps the column definitions of each
prepared statement (from its PREPARE, then from each execution that sends them), and
the server sends a result's definitions only when they changed: the byte after the
column count says whether they follow. An ML prepared statement is not what the backend
runs: the client prepared its metadata twin (proxy.ml.prepared), and each execution runs
a rewritten statement the proxy prepares itself, so the backend compares the rewritten
statement's definitions with those it gave the proxy's own PREPARE, not with those the
client holds. When it leaves them out, the client would read the rows with the twin's
definitions (a lookup's CAST may be typed otherwise than the twin's NULL placeholder).

So the proxy gives the client the definitions every time: where the backend's column
count says none follow, it becomes "they follow", the definitions of the proxy's PREPARE
go after it, and every later packet's sequence id moves up by their number. The rest of
the response streams through as it arrives (``MetadataRestorer.feed`` per chunk).
"""

from __future__ import annotations

from proxy.wire.packets import ERR_HEADER, LOCAL_INFILE_HEADER, OK_HEADER, frame, read_lenenc_int
from proxy.wire.seq_shift import SequenceShift


class MetadataRestorer:
    """Rewrites one binary-protocol response so that its first result carries its column
    definitions (see the module docstring); ``columns`` are the definitions of the
    statement's PREPARE."""

    def __init__(self, columns: list[bytes]) -> None:
        self._columns = columns
        self._head = bytearray()  # the first packet, until it is whole
        self._after: SequenceShift | None = None

    def feed(self, chunk: bytes | bytearray) -> bytes | bytearray:
        if self._after is not None:
            return self._after.apply(chunk)
        self._head += chunk
        if len(self._head) < 4:
            return b""
        end = 4 + int.from_bytes(self._head[:3], "little")
        if len(self._head) < end:
            return b""
        first, rest = bytes(self._head[:end]), bytes(self._head[end:])
        self._head = bytearray()
        restored = self._restored(first)
        self._after = SequenceShift(len(restored) - 1)
        return b"".join(restored) + self._after.apply(rest)

    def _restored(self, packet: bytes) -> list[bytes]:
        """The first packet, or in its place the column count saying the definitions
        follow and the definitions themselves, framed."""
        payload, seq = packet[4:], packet[3]
        if not payload or payload[0] in (OK_HEADER, ERR_HEADER, LOCAL_INFILE_HEADER):
            return [packet]
        count, pos = read_lenenc_int(payload, 0)
        if pos >= len(payload) or payload[pos] or count != len(self._columns):
            return [packet]  # the definitions follow (or are not the ones the proxy has)
        head = [frame(payload[:pos] + b"\x01" + payload[pos + 1 :], seq)]
        head += [frame(column, seq + 1 + i) for i, column in enumerate(self._columns)]
        return head
