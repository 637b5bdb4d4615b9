"""Issue 12: ML statements against a service with a real quota, end to end.

A local Comprehend (tests.support.fake_comprehend) serves a token bucket of 10 requests/s (burst
10) and answers ThrottlingException above it, as AWS does. Through the proxy with its
default settings (no --ml-rate-limit), statements needing 8 seconds' worth of that quota
succeed, one session or several at once, with the answers the fake's model gives (the
oracle: ``model`` computed directly), within 1.5x the time the quota allows, and with no
more throttled responses than useful ones. Random throttling changes nothing but the
counters; a spent time budget fails the statement with the setting's or the server's
own error, and the log says which function failed, calling what, and why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from ml_backends.sentiment import truncate_utf8
from tests.conftest import TEST_DB, RunningProxy, admin_connect, start_proxy, unique
from tests.support.aws_env import fake_aws_env
from tests.support.backend import BackendInfo
from tests.support.fake_comprehend import FakeComprehend, model

QUOTA = 10.0  # requests per second, and the bucket's size
BATCH = 25  # Comprehend's documents per request
TEXTS = 2000  # 80 requests: 8 seconds of the quota
SQL = (
    "SELECT id, aws_comprehend_detect_sentiment(txt, 'en'), "
    "aws_comprehend_detect_sentiment_confidence(txt, 'en') FROM {table} ORDER BY id"
)
WORDS = ("good", "bad", "good and bad", "plain", "great", "awful")


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeComprehend]:
    """The fake, and its credentials as the only AWS setup the proxy finds."""
    empty = tmp_path_factory.mktemp("aws")
    with fake_aws_env(empty), FakeComprehend(seed=12) as server:
        yield server


@pytest.fixture
def aws_proxy(backend: BackendInfo, fake: FakeComprehend) -> Iterator[RunningProxy]:
    """A fresh proxy (nothing learned yet) on the fake, with default ML settings."""
    proxy = start_proxy(
        backend, comprehend_backend="aws", aws_endpoint_url=fake.url, aws_region="us-east-1"
    )
    yield proxy
    proxy.stop()


def make_table(backend: BackendInfo, rows: int) -> tuple[str, list[str]]:
    """A table of ``rows`` distinct texts nobody has asked about."""
    table, tag = unique("quota"), unique("run")
    texts = [f"{tag} review {i}: {WORDS[i % len(WORDS)]}" for i in range(rows)]
    with admin_connect(backend, database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, txt TEXT) CHARACTER SET utf8mb4")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", list(enumerate(texts)))
        conn.commit()
    return table, texts


def oracle(texts: list[str]) -> list[tuple[int, str, float]]:
    """What the statement must answer: the fake's model, computed here."""
    verdicts = [model(truncate_utf8(text), "en") for text in texts]
    return [(i, v.label, v.confidence) for i, v in enumerate(verdicts)]


def run_sessions(proxy: RunningProxy, tables: list[str]) -> tuple[float, list[Any]]:
    """Each table's statement on its own connection, all at once: the wall time from
    the first statement sent to the last row read, and each session's rows."""
    results: list[Any] = [None] * len(tables)
    connections = [proxy.connect(database=TEST_DB) for _ in tables]
    start = threading.Barrier(len(tables) + 1)

    def session(index: int) -> None:
        with connections[index].cursor() as cur:
            start.wait()
            try:
                cur.execute(SQL.format(table=tables[index]))
                results[index] = [(i, label, conf) for i, label, conf in cur.fetchall()]
            except pymysql.MySQLError as exc:
                results[index] = exc

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(tables))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(120)
    seconds = time.perf_counter() - began
    for conn in connections:
        conn.close()
    return seconds, results


@pytest.mark.parametrize("sessions", [1, 2, 8])
def test_statements_needing_8x_a_seconds_quota_succeed_within_1_5x_its_time(
    backend: BackendInfo, fake: FakeComprehend, aws_proxy: RunningProxy, sessions: int
) -> None:
    made = [make_table(backend, TEXTS // sessions) for _ in range(sessions)]
    fake.reset(quota=QUOTA)
    seconds, results = run_sessions(aws_proxy, [table for table, _ in made])
    for (_, texts), rows in zip(made, results, strict=True):
        assert rows == oracle(texts)
    useful = len(fake.answered())
    throttled = fake.count("ThrottlingException")
    assert useful == TEXTS // BATCH
    allowed = (useful - QUOTA) / QUOTA  # the bucket starts full: 7 s for 80 requests
    print(f"{sessions} session(s): {seconds:.2f}s for {allowed:g}s allowed, {throttled} throttled")
    assert seconds <= 1.5 * allowed
    assert throttled <= useful
    assert aws_proxy.server is not None and aws_proxy.server.ctx is not None
    assert aws_proxy.server.ctx.ml.counters.throttled_cnt == throttled


def test_random_throttling_gives_identical_results_and_is_counted(
    backend: BackendInfo, fake: FakeComprehend, aws_proxy: RunningProxy
) -> None:
    table, texts = make_table(backend, 500)
    fake.reset(throttle_rate=0.3)
    with aws_proxy.connect(database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute(SQL.format(table=table))
        assert list(cur.fetchall()) == oracle(texts)
        cur.execute("SHOW STATUS LIKE 'Mlproxy_ml_throttled_cnt'")
        ((_, counted),) = cur.fetchall()
    assert int(counted) == fake.count("ThrottlingException") > 0
    assert len(fake.answered()) == 500 // BATCH


def test_global_status_shows_throttles_and_the_rate_found(
    backend: BackendInfo, fake: FakeComprehend, aws_proxy: RunningProxy
) -> None:
    table, _ = make_table(backend, 600)
    fake.reset(quota=QUOTA)
    with aws_proxy.connect(database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute(SQL.format(table=table))
        cur.fetchall()
        cur.execute("SHOW GLOBAL STATUS LIKE 'Mlproxy%'")
        assert cur.fetchall() == ()  # the proxy-wide rows need PROCESS, as the counters do
    with (
        pymysql.connect(
            host=aws_proxy.host,
            port=aws_proxy.port,
            user=backend.admin_user,
            password=backend.admin_password,
        ) as admin,
        admin.cursor() as cur,
    ):
        cur.execute("SHOW GLOBAL STATUS LIKE 'Mlproxy%'")
        status = dict(cur.fetchall())
    assert int(status["Mlproxy_ml_throttled_cnt"]) == fake.count("ThrottlingException") > 0
    rate = float(status["Mlproxy_ml_send_rate_comprehend"])
    assert 0.5 * QUOTA <= rate <= 2 * QUOTA  # found, near the quota


def test_a_spent_budget_fails_with_the_setting_and_the_log_says_why(
    backend: BackendInfo, fake: FakeComprehend, caplog: pytest.LogCaptureFixture
) -> None:
    table, _ = make_table(backend, 30)
    fake.reset(throttle_rate=1.0)
    proxy = start_proxy(
        backend,
        comprehend_backend="aws",
        aws_endpoint_url=fake.url,
        aws_region="us-east-1",
        ml_statement_timeout=1.5,
    )
    try:
        with (
            caplog.at_level(logging.WARNING, logger="mlproxy.proxy.ml.path"),
            proxy.connect(database=TEST_DB) as conn,
            conn.cursor() as cur,
        ):
            began = time.monotonic()
            with pytest.raises(pymysql.MySQLError) as caught:
                cur.execute(SQL.format(table=table))
            assert time.monotonic() - began < 10
            code, message = caught.value.args
            assert code == 1105
            assert message.startswith("aws_comprehend_detect_sentiment() failed: aws: ")
            assert "time budget of 1.5s (ml_statement_timeout)" in message
            cur.execute("SELECT 1")  # the session goes on
    finally:
        proxy.stop()
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert line.startswith("aws_comprehend_detect_sentiment() failed (backend aws): aws: ")
    assert "ThrottlingException" in line and "\n" not in line


def test_the_sessions_own_statement_timeout_is_the_budget_when_smaller(
    backend: BackendInfo, fake: FakeComprehend, aws_proxy: RunningProxy
) -> None:
    table, _ = make_table(backend, 30)
    fake.reset(throttle_rate=1.0)
    with aws_proxy.connect(database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        ((version,),) = cur.fetchall()
        if "mariadb" in version.lower():
            budget, one_second = "max_statement_time", 1
            want = (1969, "max_statement_time exceeded")
        else:
            budget, one_second = "max_execution_time", 1000
            want = (3024, "maximum statement execution time exceeded")
        cur.execute(f"SET SESSION {budget} = {one_second}")
        began = time.monotonic()
        with pytest.raises(pymysql.MySQLError) as caught:
            cur.execute(SQL.format(table=table))
        assert time.monotonic() - began < 10  # not the default ml_statement_timeout (300 s)
        code, message = caught.value.args
        assert (code, want[1] in message) == (want[0], True)
        fake.reset()
        # The limiter still paces at the rate the throttling cut it to (down to one
        # request per 2 s), so the service's answers for 30 rows may take longer than the
        # 1 s budget on a loaded machine: lift the budget to show the session goes on.
        cur.execute(f"SET SESSION {budget} = 0")
        cur.execute(SQL.format(table=table))  # the session goes on, the service is back
        assert len(cur.fetchall()) == 30
