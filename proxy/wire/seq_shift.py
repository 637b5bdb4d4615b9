"""Renumbering a relayed response that follows packets the proxy sent itself.

A MariaDB progress report (proxy.ml.activity) is a packet of the response: it takes a
sequence id, and the client expects the rest of the response to continue from there
(the client library checks every packet's id). The backend knows nothing of the reports,
so the result it sends for the rewritten statement starts again at 1; the relay adds the
number of reports to each packet's id on its way (page_protocol_basic_packets).
"""

from __future__ import annotations

_HEADER = 4


class SequenceShift:
    """Adds ``offset`` to the sequence id of every packet of a byte stream that arrives
    in chunks cut anywhere (inside a header too); the payloads pass unchanged.

    >>> shift = SequenceShift(2)
    >>> data = bytes.fromhex("010000" "01" "aa" "000000" "02")
    >>> bytes(shift.apply(data[:3]) + shift.apply(data[3:6]) + shift.apply(data[6:])).hex()
    '01000003aa00000004'
    """

    __slots__ = ("_header", "_left", "_offset", "_seen")

    def __init__(self, offset: int) -> None:
        self._offset = offset & 0xFF
        self._header = bytearray(3)  # the length bytes of the header being read
        self._seen = 0  # bytes of the current header read so far
        self._left = 0  # payload bytes of the current packet still to pass

    def apply(self, chunk: bytes | bytearray) -> bytes | bytearray:
        if not self._offset:
            return chunk
        data = bytearray(chunk)
        pos, end = 0, len(data)
        while pos < end:
            if self._left:
                step = min(self._left, end - pos)
                pos += step
                self._left -= step
                continue
            if self._seen < 3:
                self._header[self._seen] = data[pos]
            else:
                data[pos] = (data[pos] + self._offset) & 0xFF
            self._seen += 1
            pos += 1
            if self._seen == _HEADER:
                self._seen = 0
                self._left = int.from_bytes(self._header, "little")
        return data
