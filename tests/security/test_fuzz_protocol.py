"""The adversarial tier: a seeded protocol fuzzer against an in-process proxy and the real
backend (tests/support/protocol_fuzz.py builds the cases, tests/support/fuzz_runner.py plays
and judges them, tests/support/fuzz_wire.py speaks the bytes).

Every case must end with an answer or an ERR packet, or with the connection closed after
an ERR (a close without one only where the client itself quit or left); the proxy must
log no traceback and no error, keep serving a fresh legitimate client throughout, close
every session the fuzzer opened, and keep its memory bounded.

``MLPROXY_FUZZ_CASES`` (default 20,000) sets the number of cases; ``MLPROXY_FUZZ_SEED``
replays a run (the seed is printed, and each failure names its case: case i is built by
``random.Random(f"{seed}:{i}")``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import resource
import socket
import time
from collections import deque
from collections.abc import Iterator

import pytest

from proxy.transport.heap import fix_mmap_threshold
from tests.conftest import APP, RunningProxy, admin_connect, private_database, start_proxy
from tests.support.backend import BackendInfo
from tests.support.fuzz_runner import Runner, Verdict
from tests.support.fuzz_wire import Closed

FUZZ_CASES = int(os.environ.get("MLPROXY_FUZZ_CASES", "20000"))
SEED = int(os.environ.get("MLPROXY_FUZZ_SEED") or random.SystemRandom().randrange(1 << 32))
FUZZ_DB = "mlproxy_fuzz"
#: The share of cases that are logins (each on a connection of its own).
LOGIN_SHARE = 0.06
#: How often a fresh, legitimate client must still be served.
CHECK_EVERY = 2000
#: Growth of the process's resident memory allowed after the first tenth of the run
#: (the proxy and the fuzzer share the process; 16 MiB messages included).
RSS_GROWTH_LIMIT = 24 << 20


class ProblemRecords(logging.Handler):
    """Keeps every record with a traceback or of level ERROR and above; formats all
    (a broken log call is a defect too), keeps only those."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.problems: list[logging.LogRecord] = []
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        record.getMessage()
        if record.exc_info or record.levelno >= logging.ERROR:
            self.problems.append(record)


@pytest.fixture(scope="module")
def fuzz_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    with private_database(backend, FUZZ_DB):
        with admin_connect(backend, database=FUZZ_DB) as admin, admin.cursor() as cur:
            cur.execute("CREATE TABLE fuzz_t (id INT PRIMARY KEY, txt VARCHAR(100))")
            cur.execute("INSERT INTO fuzz_t VALUES (1, 'I love it'), (2, 'I hate it'), (3, NULL)")
            cur.execute("CREATE TABLE fuzz_out (id INT, label VARCHAR(20))")
        fix_mmap_threshold()  # as a proxy process does once started (proxy.transport.heap)
        proxy = start_proxy(backend, handshake_timeout=5)
        try:
            yield proxy
        finally:
            proxy.stop()


#: The loggers whose records the fuzz run keeps (and keeps from pytest).
PROXY_LOGGERS = ("mlproxy", "asyncio")


@pytest.fixture
def proxy_log() -> Iterator[ProblemRecords]:
    """The proxy's log records (INFO and up), for the test's own checks only."""
    handler = ProblemRecords()
    loggers = [logging.getLogger(name) for name in PROXY_LOGGERS]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    yield handler
    for lg, (level, propagate) in zip(loggers, saved, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate


@contextlib.contextmanager
def only_to(handler: ProblemRecords) -> Iterator[None]:
    """The proxy's records go to ``handler`` alone. pytest keeps every record of a test
    for its report, tens of thousands here, and would count as the proxy's memory
    growth; since pytest 9 it attaches its handlers to non-propagating loggers too, as
    the test's call begins, so they are taken off here, inside the call."""
    loggers = [logging.getLogger(name) for name in PROXY_LOGGERS]
    others = [(lg, h) for lg in loggers for h in lg.handlers if h is not handler]
    for lg, other in others:
        lg.removeHandler(other)
    try:
        yield
    finally:
        for lg, other in others:
            lg.addHandler(other)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def legitimate_client_works(proxy: RunningProxy) -> None:
    with proxy.connect(APP, database=FUZZ_DB) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchall() == ((1,),)
        cur.execute("SELECT aws_comprehend_detect_sentiment(txt, 'en') FROM fuzz_t ORDER BY id")
        assert [row[0] for row in cur.fetchall()] == ["POSITIVE", "NEGATIVE", None]


def describe(index: int, verdict: Verdict) -> str:
    outcome = verdict.outcome
    return (
        f"case {index} ({verdict.case.family}): {verdict.problem}; sent {verdict.case.data[:120]!r}"
        f"; got {[p[:60] for p in outcome.payloads][:6]}, closed={outcome.closed}"
    )


def backend_alive(proxy: RunningProxy) -> bool:
    try:
        socket.create_connection((proxy.backend.host, proxy.backend.port), timeout=5).close()
    except OSError:
        return False
    return True


def backend_state(proxy: RunningProxy) -> str:
    """Whether the backend still answers (the fuzzer crashed MariaDB 10.11 once: a
    segfault in the server, which a case relayed to it can reach)."""
    if backend_alive(proxy):
        return "the backend is up"
    server = proxy.backend.server
    tail = server.error_log.read_text(errors="replace")[-2000:] if server else ""
    return f"the backend is down; its error log ends with:\n{tail}"


def wait_for_no_sessions(proxy: RunningProxy, within: float = 10.0) -> int:
    deadline = time.monotonic() + within
    while proxy.session_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    return proxy.session_count()


@pytest.mark.timeout(max(300, FUZZ_CASES // 50))  # a longer run on demand gets longer
def test_protocol_fuzz(fuzz_proxy: RunningProxy, proxy_log: ProblemRecords) -> None:
    print(f"protocol fuzz: MLPROXY_FUZZ_SEED={SEED} MLPROXY_FUZZ_CASES={FUZZ_CASES}")
    runner = Runner(fuzz_proxy.port, APP.user, APP.password, FUZZ_DB)
    failures: list[str] = []
    recent: deque[str] = deque(maxlen=5)  # the last cases, for a backend that dies
    warm_rss = rss_bytes()
    started = time.monotonic()
    with only_to(proxy_log):
        try:
            for index in range(FUZZ_CASES):
                if index == FUZZ_CASES // 10:
                    warm_rss = rss_bytes()
                if index % CHECK_EVERY == 0:
                    legitimate_client_works(fuzz_proxy)
                rng = random.Random(f"{SEED}:{index}")
                login = rng.random() < LOGIN_SHARE
                try:
                    verdict = runner.run_login(rng) if login else runner.run_command(rng)
                except Closed as exc:  # a fuzzed connection could not even log in
                    state = backend_state(fuzz_proxy)
                    pytest.fail(f"seed {SEED} case {index}: {exc}; {state}; after {list(recent)}")
                recent.append(describe(index, verdict))
                if verdict.problem is not None and len(failures) < 20:
                    failures.append(describe(index, verdict))
                if {2013, 2003} & set(verdict.outcome.error_codes()) and not backend_alive(
                    fuzz_proxy
                ):
                    state = backend_state(fuzz_proxy)
                    pytest.fail(f"seed {SEED}: {state}; the last cases: {list(recent)}")
        finally:
            runner.close()
    elapsed = time.monotonic() - started
    legitimate_client_works(fuzz_proxy)
    grown = rss_bytes() - warm_rss
    print(f"protocol fuzz: {FUZZ_CASES} cases in {elapsed:.1f} s, RSS +{grown / 2**20:.1f} MiB")
    print(f"protocol fuzz: {dict(sorted(runner.stats.items()))}")
    print(f"protocol fuzz: {proxy_log.count} log records")
    assert not failures, f"seed {SEED}:\n" + "\n".join(failures)
    problems = [
        f"{r.name}: {r.getMessage()}" + (f" ({r.exc_info[1]!r})" if r.exc_info else "")
        for r in proxy_log.problems
    ]
    assert not problems, f"seed {SEED}: the proxy logged errors:\n" + "\n".join(problems[:20])
    assert wait_for_no_sessions(fuzz_proxy) == 0
    assert grown < RSS_GROWTH_LIMIT
