"""The protocol fuzzer's cases: seeded, so that any failure replays from its seed.

Three families, each a function of a ``random.Random`` (tests/support/fuzz_runner.py plays
them):

- logins: random bytes, mutated handshake responses, mutated or abandoned auth
  exchanges, each on a fresh connection;
- commands, after a real login: every command byte, each with payloads built valid
  first (SQL text, prepared statements' parameter blocks of every type with ordinary and
  malicious values, long data, COM_CHANGE_USER, COM_FIELD_LIST, ...) and then mutated;
  wrong sequence ids; several commands in one write; one command cut into pieces;
- endings: truncated packets and clients that leave mid-exchange.

``Runner`` plays cases against a proxy and judges each outcome (tests/support/fuzz_wire.py
reads the bytes); the test (tests/security/test_fuzz_protocol.py) adds what the proxy logged
and how its memory moved.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from proxy.session.prepared import asks_for_cursor
from proxy.wire import scramble
from proxy.wire.scanner import Shape
from tests.support.fuzz_wire import (
    CONNECT_ATTRS,
    LOGIN_CAPS,
    frame,
    handshake_response,
)

S = "aws_comprehend_detect_sentiment"

#: Statements mutated into COM_QUERY cases: plain, ML, the proxy's own, broken.
QUERIES = (
    "SELECT 1",
    "SELECT id, txt FROM fuzz_t ORDER BY id",
    f"SELECT {S}('I love it', 'en')",
    f"SELECT id, {S}(txt, 'en') FROM fuzz_t WHERE id < 3",
    f"SELECT {S}_confidence(txt, 'en') FROM fuzz_t",
    f"EXPLAIN SELECT {S}(txt, 'en') FROM fuzz_t",
    "SHOW STATUS LIKE 'Aurora_ml%'",
    "SHOW GLOBAL STATUS LIKE 'Aurora_ml_cache%'",
    "FLUSH STATUS",
    "KILL QUERY 1073741823",
    "SET @fuzz = 'x'",
    "SHOW CREATE FUNCTION fuzz_alias",
    "CREATE FUNCTION fuzz_alias(x TEXT) RETURNS TEXT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT "
    "ENDPOINT NAME 'fuzz-endpoint'",
    "SELECT 'it''s' AS q, \"dq\", `id` FROM fuzz_t LIMIT 1",
    "/* comment */ SELECT 2",
    f"INSERT INTO fuzz_out VALUES (1, {S}('x', 'en'))",
    "SELECT ?",
    "",
)

#: Statements prepared on every fuzzed connection, executed with mutated parameters.
PREPARED = (
    "SELECT ?, ?",
    f"SELECT {S}(?, 'en'), ?",
    f"SELECT id FROM fuzz_t WHERE id = ? AND {S}(txt, 'en') <> ?",
    "KILL QUERY ?",
)

#: Every type byte the binary protocol defines, and some it does not.
PARAM_TYPES = (
    *range(0x00, 0x15),
    0xF4,
    0xF5,
    0xF6,
    0xF7,
    0xF8,
    0xF9,
    0xFA,
    0xFB,
    0xFC,
    0xFD,
    0xFE,
    0xFF,
    0x50,
)

#: Values written into string and DECIMAL parameters: ordinary and hostile.
NASTY = (
    b"1--",
    b"1) OR (1=1",
    b"' OR '1'='1",
    b"\\' OR 1=1 -- ",
    b"1e999999999",
    b"-.5e-3",
    b"\xbf\x5c' OR 1 -- ",
    b"\x00",
    b"?",
    b"I love it",
    b"0x31",
    b"*/ OR /*",
    bytes(range(256)),
)

#: The command bytes the protocol defines (0x00-0x1f), and a few it does not.
COMMAND_BYTES = (*range(0x00, 0x20), 0x20, 0x7F, 0xFE, 0xFF)


@dataclass
class Case:
    """One input: what is sent, and what a correct proxy may do with it."""

    family: str
    data: bytes
    #: How the response to the first command is read (None: it has no response).
    shape: Shape | None = Shape.SINGLE
    #: A COM_PING rides behind the case in the same write (proves the stream in step).
    ping: bool = True
    #: The proxy may close the connection without an ERR (COM_QUIT, the client left).
    may_close: bool = False
    #: The client closes its writing side after sending (a cut packet, an abandoned login).
    hang_up: bool = False
    #: Pieces sent apart, with a pause between (a packet split across TCP segments).
    pieces: list[bytes] = field(default_factory=list)
    #: The responses of more commands sent in the same write.
    then: tuple[Shape, ...] = ()


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four byte-level mutations."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(8)
        at = rng.randrange(len(out) + 1)
        if choice == 0 and out:  # flip bits
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:  # a boundary byte
            out[min(at, len(out) - 1)] = rng.choice(
                (0x00, 0x01, 0x7F, 0x80, 0xFB, 0xFC, 0xFE, 0xFF)
            )
        elif choice == 2:  # truncate
            del out[at:]
        elif choice == 3:  # random bytes inserted
            out[at:at] = rng.randbytes(rng.randint(1, 16))
        elif choice == 4 and out:  # a run deleted
            del out[at : at + rng.randint(1, 8)]
        elif choice == 5:  # a run repeated
            out[at:at] = out[at : at + rng.randint(1, 32)] * rng.randint(1, 4)
        elif choice == 6:  # a hostile value spliced in
            out[at:at] = rng.choice(NASTY)
        else:  # a length-encoded integer prefix with nothing behind it
            out[at:at] = rng.choice(
                (b"\xfc", b"\xfd", b"\xfe", b"\xfc\xff\xff", b"\xfe" + bytes(8))
            )
    return bytes(out)


# -- parameter blocks ---------------------------------------------------------------------


def param_value(rng: random.Random, kind: int) -> bytes:
    """A well-formed binary-protocol value of ``kind`` (random, sometimes at its limits)."""
    sizes = {0x01: 1, 0x02: 2, 0x0D: 2, 0x03: 4, 0x09: 4, 0x08: 8, 0x04: 4, 0x05: 8}
    if kind in sizes:
        if kind == 0x05 and rng.random() < 0.3:
            return struct.pack("<d", rng.choice((1.5, -0.0, 1e308, float("nan"), float("inf"))))
        return rng.randbytes(sizes[kind])
    if kind == 0x06:
        return b""
    if kind in (0x07, 0x0A, 0x0C):
        length = rng.choice((0, 4, 7, 11, 5, 12))
        fields = struct.pack(
            "<HBBBBBI",
            rng.choice((2024, 0, 9999, 65535)),
            rng.choice((2, 0, 12, 13, 255)),
            rng.choice((29, 0, 31, 45)),
            rng.choice((23, 24)),
            rng.choice((59, 60)),
            rng.choice((59, 61)),
            rng.choice((0, 999_999, 1_000_000, 0xFFFFFFFF)),
        )
        return bytes((length,)) + fields[:length]
    if kind == 0x0B:
        length = rng.choice((0, 8, 12, 9))
        fields = struct.pack(
            "<BIBBBI",
            rng.choice((0, 1, 2)),
            rng.choice((0, 34, 35, 0xFFFFFFFF)),
            rng.choice((22, 24)),
            rng.choice((59, 60)),
            rng.choice((0, 60)),
            rng.choice((5, 1_000_000)),
        )
        return bytes((length,)) + fields[:length]
    value = rng.choice(NASTY) if rng.random() < 0.6 else rng.randbytes(rng.randint(0, 300))
    return lenenc(value)


def lenenc(value: bytes) -> bytes:
    size = len(value)
    if size < 0xFB:
        return bytes((size,)) + value
    if size < 1 << 16:
        return b"\xfc" + size.to_bytes(2, "little") + value
    return b"\xfd" + size.to_bytes(3, "little") + value


def execute_payload(rng: random.Random, statement_id: int, params: int) -> bytes:
    """COM_STMT_EXECUTE of ``params`` parameters of random types and values."""
    types = [rng.choice(PARAM_TYPES) for _ in range(params)]
    nulls = 0
    values = b""
    for index, kind in enumerate(types):
        if rng.random() < 0.1:
            nulls |= 1 << index
        else:
            values += param_value(rng, kind)
    bound = b"\x01" + b"".join(bytes((k, rng.choice((0, 0x80)))) for k in types)
    if rng.random() < 0.1:
        bound = b"\x00"  # types not sent again
    header = b"\x17" + statement_id.to_bytes(4, "little") + b"\x00" + (1).to_bytes(4, "little")
    if not params:
        return header
    return header + nulls.to_bytes((params + 7) // 8, "little") + bound + values


# -- the families ---------------------------------------------------------------------------


@dataclass
class Session:
    """What a fuzzed connection knows: its prepared statements (id, parameter count)."""

    statements: list[tuple[int, int]]
    user: str
    password: str
    database: str


def command_case(rng: random.Random, session: Session) -> Case:
    roll = rng.random()
    if roll < BIG_SHARE:
        return big_case(rng)
    if roll < 0.04:
        return wrong_sequence_case(rng, session)
    if roll < 0.07:
        return split_case(rng, session)
    if roll < 0.09:
        return truncated_case(rng, session)
    if roll < 0.11:
        return pipelined_case(rng, session)
    command = rng.choice(COMMAND_BYTES)
    payload = base_payload(rng, command, session)
    if rng.random() < 0.7 and command != 0x0C:
        # (a mutated COM_PROCESS_KILL could name the legitimate client's thread)
        payload = payload[:1] + mutate(rng, payload[1:])
    case = shaped_case("command", payload, rng)
    if _opens_a_cursor(payload, session):
        case.shape = Shape.CURSOR
    return case


def _opens_a_cursor(payload: bytes, session: Session) -> bool:
    """A COM_STMT_EXECUTE a mutation gave a cursor type, of a statement the backend alone
    runs: the server answers with the metadata alone (and opens a cursor), which the
    proxy relays as it is. (An ML statement's execution is the proxy's own statement and
    answers its rows; a prepared KILL, OK or an ERR.)"""
    if payload[:1] != b"\x17" or len(payload) < 6 or not payload[5] & 0x07:
        return False
    plain = session.statements[0][0]  # PREPARED[0], SELECT ?, ?
    return int.from_bytes(payload[1:5], "little") == plain


def shaped_case(family: str, payload: bytes, rng: random.Random, seq: int = 0) -> Case:
    """A command framed, with the response shape the proxy gives it."""
    command = payload[0] if payload else -1
    case = Case(family, frame(payload, seq), shape=RESPONSE_SHAPES.get(command, Shape.SINGLE))
    if command == 0x17 and asks_for_cursor(payload):  # mutated flags may open a cursor
        case.shape = Shape.CURSOR
    if command == 0x01:  # COM_QUIT
        case.shape, case.ping, case.may_close = None, False, True
    elif command == 0x11:  # COM_CHANGE_USER: its exchange may continue; no ping behind
        case.ping = False
        case.may_close = True
    return case


#: How the proxy answers each command byte (anything else: one ERR, 1047).
RESPONSE_SHAPES: dict[int, Shape | None] = {
    0x03: Shape.RESULT,
    0x16: Shape.PREPARE,
    0x17: Shape.RESULT,
    0x18: None,
    0x19: None,
    0x04: Shape.FIELDS,
    0x0A: Shape.RESULT,
    0x1C: Shape.ROWS,
}


def base_payload(rng: random.Random, command: int, session: Session) -> bytes:
    """A valid (or at least well-formed) payload for ``command``."""
    head = bytes((command,))
    if command in (0x03, 0x16):
        return head + rng.choice(QUERIES).encode()
    statement_id, params = rng.choice(session.statements)
    sid = statement_id.to_bytes(4, "little")
    if command == 0x17:
        return execute_payload(rng, statement_id, params)
    if command == 0x18:
        return head + sid + rng.randrange(3).to_bytes(2, "little") + rng.choice(NASTY)
    if command in (0x19, 0x1A):
        return head + sid
    if command == 0x1C:
        return head + sid + (1).to_bytes(4, "little")
    if command == 0x04:
        return head + b"fuzz_t\x00" + rng.choice((b"", b"%", b"i%"))
    if command == 0x02:
        return head + rng.choice((session.database.encode(), b"no_such_db", b""))
    if command == 0x11:
        return change_user_payload(rng, session)
    if command == 0x0C:  # an id no connection has (not mutated: see command_case)
        return head + rng.randrange(1 << 24, 1 << 30).to_bytes(4, "little")
    if command == 0x1B:
        return head + rng.choice((b"\x00\x00", b"\x01\x00"))
    return head + rng.randbytes(rng.randint(0, 8))


def change_user_payload(rng: random.Random, session: Session) -> bytes:
    """COM_CHANGE_USER to the same account (its answer random: the proxy then asks for
    full authentication, which the runner abandons or answers with junk)."""
    auth = rng.randbytes(rng.choice((0, 20, 32)))
    return b"".join(
        (
            b"\x11",
            session.user.encode() + b"\x00",
            bytes((len(auth),)) + auth,
            session.database.encode() + b"\x00",
            (45).to_bytes(2, "little"),
            scramble.CACHING_SHA2.encode() + b"\x00",
            CONNECT_ATTRS,
        )
    )


#: The share of 16 MiB messages (about four in 20,000 cases: each costs 16 MiB of I/O).
BIG_SHARE = 0.0002
MAX_PAYLOAD = 0xFFFFFF


def big_case(rng: random.Random) -> Case:
    """A statement of 16 MiB or more, split into packets as the protocol says, or with a
    continuation whose sequence id is wrong, or ending exactly at a packet's limit."""
    size = rng.choice((MAX_PAYLOAD - 1, MAX_PAYLOAD, MAX_PAYLOAD + 7))
    body = b"SELECT LENGTH('" + b"x" * (size - 19) + b"')"
    payload = b"\x03" + body[: size - 1]
    packets = [payload[i : i + MAX_PAYLOAD] for i in range(0, len(payload), MAX_PAYLOAD)]
    if len(payload) % MAX_PAYLOAD == 0:
        packets.append(b"")
    seqs = list(range(len(packets)))
    if len(packets) > 1 and rng.random() < 0.5:
        seqs[-1] = rng.randint(2, 255)
    data = b"".join(frame(packet, seq) for packet, seq in zip(packets, seqs, strict=True))
    return Case("16 MiB packet", data, shape=Shape.RESULT)


def wrong_sequence_case(rng: random.Random, session: Session) -> Case:
    payload = rng.choice((b"\x03SELECT 1", b"\x0e", execute_payload(rng, *session.statements[1])))
    case = shaped_case("wrong sequence id", payload, rng, seq=rng.randint(1, 255))
    case.ping = False
    return case


def split_case(rng: random.Random, session: Session) -> Case:
    """A valid command cut into pieces sent apart (the stream must join them)."""
    payload = b"\x03" + rng.choice(QUERIES[:6]).encode()
    case = shaped_case("split packet", payload, rng)
    data = case.data
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 4))))
    case.pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return case


def truncated_case(rng: random.Random, session: Session) -> Case:
    """A packet whose header promises more than is sent, then the client leaves."""
    payload = base_payload(rng, rng.choice((0x03, 0x16, 0x17, 0x11)), session)
    data = frame(payload, 0)
    cut = rng.randrange(1, len(data)) if len(data) > 1 else 1
    return Case(
        "truncated packet", data[:cut], shape=None, ping=False, may_close=True, hang_up=True
    )


def pipelined_case(rng: random.Random, session: Session) -> Case:
    """Two statements in one write (behind them the ping): answered in order."""
    first, second = (b"\x03" + rng.choice(QUERIES[:6]).encode() for _ in range(2))
    case = shaped_case("pipelined", first, rng)
    case.data += frame(second, 0)
    case.then = (Shape.RESULT,)
    return case


def login_case(rng: random.Random, nonce: bytes, user: str, password: str, db: str) -> Case:
    """A handshake response (to the greeting whose nonce is given), mostly mutated."""
    roll = rng.random()
    answer = scramble.sha2_scramble(password.encode(), nonce)
    valid = handshake_response(user.encode(), answer, db.encode())
    if roll < 0.15:
        data = frame(rng.randbytes(rng.randint(0, 120)), rng.choice((0, 1, 7)))
    elif roll < 0.25:  # an SSLRequest, then no TLS handshake but junk, and the client leaves
        request = frame(struct.pack("<IIB23s", LOGIN_CAPS | 0x800, 1 << 24, 45, b""), 1)
        junk = rng.choice((b"", rng.randbytes(rng.randint(1, 64)), frame(valid, 2)))
        return Case("login over no TLS", request + junk, None, False, True, hang_up=True)
    elif roll < 0.35:  # the right answer, then the client leaves
        return Case("login abandoned", frame(valid, 1), None, False, True, hang_up=True)
    elif roll < 0.45:  # without protocol 4.1, or a huge declared size
        caps = rng.choice((LOGIN_CAPS & ~0x200, 0, 0xFFFFFFFF))
        data = frame(struct.pack("<I", caps) + valid[4:], 1)
    else:
        data = frame(mutate(rng, valid), rng.choice((1, 1, 1, 0, 2)))
    if len(data) == 36 and int.from_bytes(data[4:8], "little") & 0xA00 == 0xA00:
        # A mutation made an SSLRequest: TLS would begin, so the client leaves instead.
        return Case("login over no TLS", data, None, False, True, hang_up=True)
    return Case("login", data, shape=Shape.SINGLE, ping=False)
