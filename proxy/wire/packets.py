"""Sans-IO MySQL packet codecs: bytes in, values out, and back.

Nothing here touches a socket. The formats follow the MySQL client/server protocol
pages (dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html): packet framing
(page_protocol_basic_packets), integer and string encodings (page_protocol_basic_dt_*),
OK/ERR/EOF (page_protocol_basic_ok_packet, _err_packet, _eof_packet).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: A physical packet carries at most this many payload bytes; a longer message is split
#: and a message of an exact multiple of it ends with an empty packet.
MAX_PAYLOAD = 0xFFFFFF

OK_HEADER = 0x00
EOF_HEADER = 0xFE
ERR_HEADER = 0xFF
LOCAL_INFILE_HEADER = 0xFB

_UINT16 = struct.Struct("<H")


def frame(payload: bytes, seq: int) -> bytes:
    """Wrap a payload in packet headers, splitting it at 16 MiB, starting at ``seq``."""
    if len(payload) < MAX_PAYLOAD:
        return _header(len(payload), seq) + payload
    parts = []
    offset = 0
    while True:
        chunk = payload[offset : offset + MAX_PAYLOAD]
        parts.append(_header(len(chunk), seq) + chunk)
        seq = (seq + 1) & 0xFF
        offset += MAX_PAYLOAD
        if len(chunk) < MAX_PAYLOAD:
            return b"".join(parts)


def _header(length: int, seq: int) -> bytes:
    return bytes((length & 0xFF, (length >> 8) & 0xFF, length >> 16, seq & 0xFF))


def frame_all(payloads: list[bytes]) -> bytes:
    """A whole response the proxy sends itself: each payload framed, sequence ids from 1."""
    return b"".join(frame(payload, seq) for seq, payload in enumerate(payloads, start=1))


# -- integers and strings -----------------------------------------------------------------


def lenenc_int(value: int) -> bytes:
    """Encode a length-encoded integer."""
    if value < 0xFB:
        return bytes((value,))
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def read_lenenc_int(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode a length-encoded integer at ``pos``; return (value, next position)."""
    first = buf[pos]
    if first < 0xFB:
        return first, pos + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if width is None:
        raise ValueError(f"invalid length-encoded integer prefix 0x{first:02x}")
    end = pos + 1 + width
    if end > len(buf):
        raise ValueError("truncated length-encoded integer")
    return int.from_bytes(buf[pos + 1 : end], "little"), end


def read_null_str(buf: bytes, pos: int) -> tuple[bytes, int]:
    """Read a NUL-terminated string (a missing terminator ends at the buffer's end)."""
    end = buf.find(b"\x00", pos)
    if end < 0:
        return buf[pos:], len(buf)
    return buf[pos:end], end + 1


def read_lenenc_str(buf: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = read_lenenc_int(buf, pos)
    if pos + length > len(buf):
        raise ValueError("truncated length-encoded string")
    return buf[pos : pos + length], pos + length


def lenenc_str(value: bytes) -> bytes:
    return lenenc_int(len(value)) + value


# -- OK / ERR / EOF -----------------------------------------------------------------------


@dataclass(frozen=True)
class ServerError:
    """An ERR packet's contents."""

    code: int
    sqlstate: str
    message: str


def make_err(code: int, sqlstate: str, message: str) -> bytes:
    """Build an ERR packet payload (protocol 4.1 form, with SQLSTATE)."""
    state = sqlstate.encode("ascii")
    if len(state) != 5:
        raise ValueError(f"SQLSTATE must have 5 characters, got {sqlstate!r}")
    body = message.encode("utf-8", "replace")
    return b"\xff" + code.to_bytes(2, "little") + b"#" + state + body


def parse_err(payload: bytes) -> ServerError:
    """Decode an ERR packet payload."""
    if not payload or payload[0] != ERR_HEADER or len(payload) < 3:
        raise ValueError("not an ERR packet")
    code = int.from_bytes(payload[1:3], "little")
    if payload[3:4] == b"#" and len(payload) >= 9:
        state, message = payload[4:9].decode("ascii", "replace"), payload[9:]
    else:
        state, message = "HY000", payload[3:]
    return ServerError(code, state, message.decode("utf-8", "replace"))


def make_ok(
    status: int, affected_rows: int = 0, last_insert_id: int = 0, warnings: int = 0
) -> bytes:
    """Build an OK packet payload (protocol 4.1 form)."""
    return (
        b"\x00"
        + lenenc_int(affected_rows)
        + lenenc_int(last_insert_id)
        + _UINT16.pack(status & 0xFFFF)
        + _UINT16.pack(warnings)
    )


def ok_status(payload: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """Status flags of an OK packet (or an EOF-as-OK packet) starting at ``pos``."""
    _, p = read_lenenc_int(payload, pos + 1)
    _, p = read_lenenc_int(payload, p)
    if p + 2 > len(payload):
        return 0
    return int(payload[p]) | int(payload[p + 1]) << 8


def eof_status(payload: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """Status flags of an EOF packet starting at ``pos`` (header, warnings, status)."""
    if pos + 5 > len(payload):
        return 0
    return int(payload[pos + 3]) | int(payload[pos + 4]) << 8


# -- MariaDB progress reports -------------------------------------------------------------

#: An ERR packet with this code is a progress report, for a client that asked for them
#: (CLIENT_PROGRESS_OBSOLETE, bit 29; MariaDB's "Progress reporting" page).
PROGRESS_CODE = 0xFFFF


@dataclass(frozen=True)
class Progress:
    """One progress report: stage ``stage`` of ``max_stage`` (from 1), ``percent`` of it done."""

    stage: int
    max_stage: int
    percent: float
    state: str


def make_progress(progress: Progress) -> bytes:
    """A progress report packet payload, as MariaDB's net_send_progress_packet writes it:
    0xFF, the code 0xFFFF, the number of strings (1), stage, max stage, the stage's
    progress in thousandths of a percent (3 bytes), the state as a length-encoded string.

    >>> make_progress(Progress(1, 2, 45.5, "x")).hex()
    'ffffff010102bcb1000178'
    """
    thousandths = max(0, min(100_000, round(progress.percent * 1000)))
    return (
        b"\xff"
        + PROGRESS_CODE.to_bytes(2, "little")
        + bytes((1, progress.stage & 0xFF, progress.max_stage & 0xFF))
        + thousandths.to_bytes(3, "little")
        + lenenc_str(progress.state.encode("utf-8"))
    )


def parse_progress(payload: bytes) -> Progress | None:
    """A progress report's contents (as the client library reads them); None for any
    other packet."""
    if len(payload) < 9 or payload[0] != ERR_HEADER or payload[1:3] != b"\xff\xff":
        return None
    stage, max_stage = payload[4], payload[5]
    thousandths = int.from_bytes(payload[6:9], "little")
    state, _ = read_lenenc_str(payload, 9)
    return Progress(stage, max_stage, thousandths / 1000, state.decode("utf-8", "replace"))
