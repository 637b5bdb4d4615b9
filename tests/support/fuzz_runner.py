"""Plays the protocol fuzzer's cases (tests/support/protocol_fuzz.py) against a proxy and judges
each outcome: an answer, an ERR, or a close after an ERR (a close without one only where
the client itself quit or left); never silence.
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

from proxy.wire.scanner import Shape
from tests.support.fuzz_wire import Closed, Outcome, Wire, frame, log_in, parse_greeting
from tests.support.protocol_fuzz import PREPARED, Case, Session, command_case, login_case


@dataclass
class Verdict:
    case: Case
    outcome: Outcome
    problem: str | None


@dataclass
class Runner:
    """Plays cases against the proxy on ``port``: many per connection, a new one after
    each close. Judges every outcome; collects statistics."""

    port: int
    user: str
    password: str
    database: str
    timeout: float = 10.0
    stats: Counter[str] = field(default_factory=Counter)
    failures: list[Verdict] = field(default_factory=list)
    _wire: Wire | None = None
    _session: Session | None = None

    def close(self) -> None:
        if self._wire is not None:
            self._wire.close()
            self._wire = None

    # -- connections --

    def _connect(self) -> tuple[Wire, Session]:
        if self._wire is not None and not self._wire.closed and self._session is not None:
            return self._wire, self._session
        wire = log_in(self.port, self.user, self.password, self.database, self.timeout)
        statements = []
        for sql in PREPARED:
            wire.send(b"\x16" + sql.encode())
            prepared = wire.read_response(Shape.PREPARE, Outcome())
            first = prepared.payloads[0]
            if first[:1] != b"\x00":
                raise Closed(f"could not prepare {sql!r}: {first!r}")
            statements.append((int.from_bytes(first[1:5], "little"), sql.count("?")))
        self._wire, self._session = (
            wire,
            Session(statements, self.user, self.password, self.database),
        )
        self.stats["connections"] += 1
        return wire, self._session

    # -- cases --

    def run_command(self, rng: random.Random) -> Verdict:
        wire, session = self._connect()
        case = command_case(rng, session)
        outcome = self._play(wire, case)
        if case.family == "command" and case.data[4:5] == b"\x11":
            self._finish_change_user(rng, wire, outcome)
        if not case.ping:
            self._in_step(wire, outcome)
        return self._judge(case, outcome, wire)

    def run_login(self, rng: random.Random) -> Verdict:
        wire = Wire(self.port, self.timeout)
        try:
            greeting = parse_greeting(wire.read_packet()[1])
            case = login_case(rng, greeting.nonce, self.user, self.password, self.database)
            outcome = self._play(wire, case)
            if not outcome.closed and not outcome.silent and outcome.payloads:
                self._finish_login(rng, wire, outcome)
            if outcome.payloads and outcome.payloads[-1][:1] == b"\xff":
                wire.closes(outcome)  # a refused login ends: the close must follow
            return self._judge(case, outcome, wire)
        finally:
            wire.close()

    def _play(self, wire: Wire, case: Case) -> Outcome:
        outcome = Outcome()
        ping = frame(b"\x0e", 0) if case.ping else b""
        if case.pieces:
            for piece in case.pieces:
                wire.send_raw(piece)
                time.sleep(0.001)
            wire.send_raw(ping)
        else:
            wire.send_raw(case.data + ping)
        if case.hang_up:
            with contextlib.suppress(OSError):  # (unless it has closed already)
                wire.sock.shutdown(socket.SHUT_WR)  # the proxy sees the end of the stream
            return wire.closes(outcome)
        if case.shape is None and case.may_close:
            return wire.closes(outcome)
        wire.read_response(case.shape or Shape.SINGLE, outcome)
        for shape in case.then:
            if not outcome.closed:
                wire.read_response(shape, outcome)
        if case.shape is None and outcome.errors and not outcome.closed:
            wire.read_response(Shape.SINGLE, outcome)  # the ping's, after the case's ERR
        elif case.ping and case.shape is not None and not outcome.closed:
            wire.read_response(Shape.SINGLE, outcome)  # the ping's
        if case.ping and outcome.payloads and outcome.payloads[-1][:1] == b"\xff":
            wire.closes(outcome)  # a ping refused: the session is ending, the close follows
        return outcome

    def _in_step(self, wire: Wire, outcome: Outcome) -> None:
        """After an exchange without a ping behind it: one now, so that a connection
        the proxy closes is this case's outcome, not the next one's."""
        if outcome.closed or outcome.silent or wire.closed:
            return
        wire.send(b"\x0e", 0)
        wire.read_response(Shape.SINGLE, outcome)

    def _finish_change_user(self, rng: random.Random, wire: Wire, outcome: Outcome) -> None:
        """COM_CHANGE_USER asked for more (an auth switch, full authentication): leave,
        or answer junk, until it ends. A refused change leaves the session its old
        user's, reset (as on the server): a ping must still be answered, then the next
        case starts on a new connection (its prepared statements are gone)."""
        for seq in (2, 4, 6, 8):  # the client's turns: the proxy's replies take the odd ids
            last = outcome.payloads[-1] if outcome.payloads else b""
            if outcome.closed or outcome.silent or last[:1] not in (b"\x01", b"\xfe"):
                break
            if last != b"\x01\x03":  # (the fast path: its OK or ERR simply follows)
                if rng.random() < 0.3:
                    wire.leave()
                    outcome.closed = outcome.client_left = True
                    return
                wire.send(rng.randbytes(rng.choice((0, 1, 256))), seq)
            wire.read_response(Shape.SINGLE, outcome)
        if outcome.payloads and outcome.payloads[-1][:1] == b"\xff" and not outcome.closed:
            wire.send(b"\x0e", 0)
            wire.read_response(Shape.SINGLE, outcome)
            if not outcome.closed and not outcome.silent:
                wire.close()  # judged as it is; the next case logs in again

    def _finish_login(self, rng: random.Random, wire: Wire, outcome: Outcome) -> None:
        """A login that asked for more: leave, answer junk, or ask for the RSA key."""
        last = outcome.payloads[-1]
        if last == b"\x01\x03":
            wire.read_response(Shape.SINGLE, outcome)
            return
        if last[:1] not in (b"\x01", b"\xfe"):
            return
        choice = rng.randrange(3)
        if choice == 1:
            wire.send(rng.randbytes(rng.choice((0, 1, 256))), 3)
            wire.read_response(Shape.SINGLE, outcome)
            return
        if choice == 2:
            wire.send(b"\x02", 3)
            wire.read_response(Shape.SINGLE, outcome)
        wire.leave()
        outcome.closed = outcome.client_left = True

    def _judge(self, case: Case, outcome: Outcome, wire: Wire) -> Verdict:
        problem = None
        if outcome.silent:
            problem = f"no answer within {self.timeout} s"
        elif outcome.closed and not outcome.errors and not (case.may_close or outcome.client_left):
            problem = "closed without an ERR packet"
        for payload in outcome.errors:
            if b"internal error" in payload:
                problem = f"internal error: {payload!r}"
        self.stats[case.family] += 1
        self.stats["closed" if outcome.closed else "open"] += 1
        for code in outcome.error_codes():
            self.stats[f"ERR {code}"] += 1
        if outcome.closed or outcome.silent:
            wire.close()
        verdict = Verdict(case, outcome, problem)
        if problem is not None:
            self.failures.append(verdict)
        return verdict
