"""The proxy streams big results: bounded memory, backpressure, and rows before the end.

The proxy runs as it is deployed, a ``python -m proxy serve`` subprocess, so that its
resident memory can be read from /proc/PID/status while a client reads a 1,000,000-row
x 5-column SELECT (about 58 MB on the wire; see ``wire_bytes``) through it.

PyMySQL uses TLS when the server offers it, and the proxy does (the backend may not):
the reads through the proxy run over TLS and in plaintext, as marked.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors
import pytest

from bench import clients
from bench.dataset import STREAM_COLUMNS, STREAM_DDL, STREAM_TABLE, Endpoint, fill
from bench.services import Service, read_memory, reset_peak, start_proxy
from tests.conftest import APP, TEST_DB, admin_connect
from tests.support.backend import BackendInfo

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

ROWS = 1_000_000
TABLE = STREAM_TABLE  # the name bench.clients.stream reads
SELECT = f"SELECT id, a, s, d, ts FROM {TABLE} ORDER BY id"
MB = 1 << 20

# Peak RSS growth allowed while the proxy relays the big result. Measured on MariaDB
# 10.11 / Python 3.11: 1-3 MB (the proxy holds at most its 256 KiB reader buffer pair and
# one 64 KiB chunk per direction, plus allocator noise). A proxy that buffered the result
# would need at least its wire size, and the test checks that the wire size is more than
# twice this bound, so a buffering proxy cannot pass whatever the allocator does.
RSS_GROWTH_BOUND = 16 * MB

# The slow client stops reading for this long after its first row: far longer than the
# backend needs to send the whole result (well under a second on a small machine).
PAUSE_S = 2.0


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_proxy(backend: BackendInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The proxy as a subprocess (the mlproxy CLI) in front of the backend fixture."""
    service = start_proxy(backend.host, backend.port, tmp_path_factory.mktemp("proxy-log"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def wire_bytes(backend: BackendInfo) -> Iterator[int]:
    """Create the big table (dropped afterwards); yield its result's size on the wire."""
    with admin_connect(backend, database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        # (id, a, s, d, ts) = (seq, seq * 2, CONCAT('row-', seq), seq / 3, NOW()), from the
        # Sequence engine, or a recursive CTE where it is missing (MySQL).
        cur.execute(STREAM_DDL.format(table=TABLE))
        fill(cur, TABLE, STREAM_COLUMNS, ROWS)
        # Per row: a 4-byte packet header, then 5 length-prefixed text values.
        cur.execute(
            "SELECT SUM(4 + 5 + LENGTH(id) + LENGTH(a) + LENGTH(s) + LENGTH(d) + LENGTH(ts))"
            f" FROM {TABLE}"
        )
        size = int(cur.fetchone()[0])
    log.info("the big SELECT is %.1f MB on the wire", size / MB)
    assert size > 2 * RSS_GROWTH_BOUND, "the result must be too big to hide in the bound"
    yield size
    with admin_connect(backend, database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")


def _connect(host: str, port: int, *, tls: bool) -> pymysql.Connection[Any]:
    """The app account, with an unbuffered cursor (rows are read as they arrive)."""
    return pymysql.connect(
        host=host,
        port=port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
        autocommit=True,
        cursorclass=pymysql.cursors.SSCursor,
        ssl_disabled=not tls,
    )


# -- helpers --------------------------------------------------------------------------------


class RssWatch:
    """Samples a process's VmRSS in a thread; its growth is the peak over the start RSS.

    The kernel's own peak (VmHWM, reset on entry through clear_refs) is also read on exit,
    so that a peak between two samples is not missed.
    """

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid = pid
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssWatch:
        self._kernel_peak = reset_peak(self.pid)
        self.start = self.peak = read_memory(self.pid).rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._kernel_peak:
            self.peak = max(self.peak, read_memory(self.pid).peak)
        log.info(
            "pid %d: RSS %.1f MB, peak growth %.1f MB", self.pid, self.start / MB, self.growth / MB
        )

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, read_memory(self.pid).rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start


def checksum(rows: Iterator[tuple[Any, ...]]) -> tuple[object, ...]:
    """Row count, column sums, a CRC of the strings, and the distinct timestamps."""
    count = sum_id = sum_a = crc = 0
    sum_d = Decimal(0)
    stamps = set()
    for id_, a, s, d, ts in rows:
        count += 1
        sum_id += id_
        sum_a += a
        crc = zlib.crc32(s.encode(), crc)
        sum_d += d
        stamps.add(ts)
    return count, sum_id, sum_a, crc, sum_d, frozenset(stamps)


def _backend_still_sending(backend: BackendInfo) -> bool:
    """Whether the app user's big SELECT is still running on the backend."""
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE USER = %s AND COMMAND = 'Query' AND INFO = %s",
            (APP.user, SELECT),
        )
        return bool(cur.fetchone()[0])


def _warm_up(proxy: Service, tls: bool) -> None:
    """One small query first, so that the baseline RSS includes the session code paths."""
    with _connect(proxy.host, proxy.port, tls=tls) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {TABLE} LIMIT 1000")
        cur.fetchall()


# -- tests ----------------------------------------------------------------------------------


def test_big_select_matches_direct_read_with_bounded_memory(
    backend: BackendInfo, cli_proxy: Service, wire_bytes: int
) -> None:
    """Over TLS: PyMySQL's default with the proxy."""
    with _connect(backend.host, backend.port, tls=False) as conn, conn.cursor() as cur:
        cur.execute(SELECT)
        expected = checksum(cur)
    _warm_up(cli_proxy, tls=True)
    with (
        RssWatch(cli_proxy.pid) as watch,
        _connect(cli_proxy.host, cli_proxy.port, tls=True) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(SELECT)
        through_proxy = checksum(cur)
    assert through_proxy[0] == ROWS
    assert through_proxy == expected
    assert watch.growth < RSS_GROWTH_BOUND, (
        f"proxy RSS grew {watch.growth / MB:.1f} MB relaying a {wire_bytes / MB:.0f} MB result"
    )


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "tls"])
def test_slow_client_holds_back_the_backend_not_the_proxy_memory(
    backend: BackendInfo, cli_proxy: Service, wire_bytes: int, tls: bool
) -> None:
    """Backpressure: while the client does not read, the backend waits, the proxy doesn't
    buffer. The backend still running the SELECT after the pause also shows that the first
    row reached the client before the backend had sent the last."""
    _warm_up(cli_proxy, tls)
    with (
        RssWatch(cli_proxy.pid) as watch,
        _connect(cli_proxy.host, cli_proxy.port, tls=tls) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(SELECT)
        count = 1 if cur.fetchone() is not None else 0
        time.sleep(PAUSE_S)
        assert _backend_still_sending(backend), "the backend finished while the client slept"
        while rows := cur.fetchmany(1000):
            count += len(rows)
            if count < ROWS // 10:
                time.sleep(0.005)  # a slow reader for the first tenth of the stream
    assert count == ROWS
    assert watch.growth < RSS_GROWTH_BOUND, (
        f"proxy RSS grew {watch.growth / MB:.1f} MB behind a slow client"
        f" reading a {wire_bytes / MB:.0f} MB result"
    )


def test_first_row_arrives_long_before_the_last(cli_proxy: Service, wire_bytes: int) -> None:
    """Time to first row < 1/4 of the whole read, with a fast C client (mariadb --quick).

    Not a speed target but a structural property: a proxy that collected the result
    before relaying it would deliver the first row only after the backend had sent the
    last, i.e. after most of the read's time (its relay of the collected bytes afterwards
    is the short part); a streaming proxy delivers it after the login and the first chunk,
    a few percent of the read. The C client matters: a slow (Python) client would stretch
    the total and hide a buffering proxy's delay.
    """
    if clients.cli_binary() is None:
        pytest.skip("no mariadb/mysql command-line client installed")
    endpoint = Endpoint(cli_proxy.host, cli_proxy.port, APP.user, APP.password, TEST_DB)
    result = clients.stream(endpoint)  # SELECT * FROM stream_rows, see bench.clients
    log.info("first row after %.3f s of %.3f s", result.first_row_s, result.total_s)
    assert result.rows == ROWS
    assert result.first_row_s < result.total_s / 4, result


def test_proxy_log_has_no_errors(cli_proxy: Service) -> None:
    """The streams above ran without the proxy logging an unexpected error."""
    text = Path(cli_proxy.log_path).read_text(errors="replace")
    assert "Traceback" not in text and " ERROR " not in text, text[-3000:]
