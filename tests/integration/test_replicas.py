"""Replicas sharing one Redis (issue 14): two proxies in front of one MariaDB, with
``--ml-cache`` on a real redis-server (tests/support/redis_server.py).

The cache: the second replica asks the model nothing the first paid for (counted at the
model), a redefined alias and another account get no hits, and statements go on when
Redis stops (one warning per replica). KILL: a KILL QUERY or KILL CONNECTION sent
through one replica reaches a connection of the other, and connection ids never
collide. Oracles: the model's answers computed by the same statement directly on the
backend, and direct KILLs' outcomes (tests/integration/test_kill.py)."""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

import pymysql
import pytest

from proxy.replicas.ids import BLOCK_SIZE, BLOCKS, block_key, block_of
from proxy.replicas.kill_bridge import ReplicaPeers
from proxy.session.kill import PROXY_ID_BASE
from tests.conftest import (
    APP,
    OTHER,
    Account,
    RunningProxy,
    admin_connect,
    private_database,
    start_proxy,
    unique,
    wait_until,
)
from tests.integration.test_lifecycle import ProxyProcess, backend_url
from tests.support.backend import BackendInfo
from tests.support.redis_server import PASSWORD, RedisServer, start_redis
from tests.support.replica_models import ASKED

Connection: TypeAlias = "pymysql.Connection[Any]"

DB = "mlproxy_replicas"
MODELS = "python:tests.support.replica_models:"
ROUTES = (f"replica-ep={MODELS}score", f"replica-other-ep={MODELS}hundred")
ROWS = 40
ER_QUERY_INTERRUPTED = 1317
ER_NO_SUCH_THREAD = 1094


@pytest.fixture(scope="module")
def schema(backend: BackendInfo) -> Iterator[str]:
    """The module's database, with rows the alias reads; OTHER may use it too."""
    with private_database(backend, DB) as name:
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"GRANT ALL ON {name}.* TO '{OTHER.user}'@'%'")
            cur.execute(f"CREATE TABLE {name}.items (id INT PRIMARY KEY, a INT, b VARCHAR(20))")
            cur.executemany(
                f"INSERT INTO {name}.items VALUES (%s, %s, %s)",
                [(i, i % 17, "x" * (i % 5)) for i in range(ROWS)],
            )
        yield name
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"REVOKE ALL ON {name}.* FROM '{OTHER.user}'@'%'")


def replica(backend: BackendInfo, redis: RedisServer, **settings: Any) -> RunningProxy:
    return start_proxy(
        backend, ml_cache=redis.url, endpoint=ROUTES, registry_refresh=0.2, **settings
    )


@pytest.fixture(scope="module")
def replicas(
    backend: BackendInfo, redis_session: RedisServer, schema: str
) -> Iterator[tuple[RunningProxy, RunningProxy]]:
    if redis_session.process is None:
        redis_session.start()
    first, second = replica(backend, redis_session), replica(backend, redis_session)
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def fresh(redis_session: RedisServer) -> Iterator[None]:
    """No shared answers from earlier tests (the id leases stay: the proxies hold them),
    and the models' records empty."""
    with redis_session.client() as client:
        stale = client.keys("mlproxy:answer:*")
        if stale:
            client.delete(*stale)
    for asked in ASKED.values():
        asked.clear()
    yield


def rows(connection: Connection, sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cur:
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]


def create_alias(proxy: RunningProxy, extra: str = "", endpoint: str = "replica-ep") -> str:
    name = unique("f")
    with proxy.connect(database=DB) as conn:
        rows(
            conn,
            f"CREATE FUNCTION {name}(a INT, b VARCHAR(20)) RETURNS INT ALIAS "
            f"AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME '{endpoint}' {extra}",
        )
    return name


def scored(proxy: RunningProxy, name: str, account: Account = APP) -> list[tuple[Any, ...]]:
    """The statement through ``proxy``, once the alias is visible there."""
    with proxy.connect(account, database=DB) as conn:
        statement = f"SELECT id, {name}(a, b) FROM items ORDER BY id"

        def visible() -> bool:
            try:
                rows(conn, f"SELECT {name}(1, 'a')")
            except pymysql.MySQLError:
                return False
            return True

        assert wait_until(visible), f"{name} is not callable through the proxy"
        return rows(conn, statement)


def expected(backend: BackendInfo, formula: str = "a * 2 + CHAR_LENGTH(b)") -> list[Any]:
    """The oracle: the model's function written in SQL, on the backend directly."""
    with admin_connect(backend, database=DB) as admin:
        return rows(admin, f"SELECT id, {formula} FROM items ORDER BY id")


# -- the shared cache -------------------------------------------------------------------------


def test_the_second_replica_asks_the_model_nothing_the_first_answered(
    replicas: tuple[RunningProxy, RunningProxy], backend: BackendInfo, fresh: None
) -> None:
    first, second = replicas
    name = create_alias(first)
    ASKED["score"].clear()  # the visibility probe's call
    assert scored(first, name) == expected(backend)
    paid = len(ASKED["score"])
    assert paid >= ROWS // 2  # the distinct (a, b) pairs, and the probe
    assert scored(second, name) == expected(backend)
    assert len(ASKED["score"]) == paid  # the probe (1, 'a') was answered already too


def test_a_redefined_alias_does_not_reuse_old_answers(
    replicas: tuple[RunningProxy, RunningProxy], backend: BackendInfo, fresh: None
) -> None:
    first, second = replicas
    name = create_alias(first)
    assert scored(first, name) == expected(backend)
    with first.connect(database=DB) as conn:
        rows(conn, f"DROP FUNCTION {name}")
        rows(
            conn,
            f"CREATE FUNCTION {name}(a INT, b VARCHAR(20)) RETURNS INT ALIAS "
            "AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'replica-ep' MAX_BATCH_SIZE 7",
        )
    ASKED["score"].clear()

    def redefined_there() -> bool:
        # the same answers (same model): what tells is that the model is asked again
        scored(second, name)
        return len(ASKED["score"]) >= ROWS // 2

    assert wait_until(redefined_there)  # never, if answers were keyed by name or target


def test_a_redefinition_to_another_model_answers_with_the_new_model(
    replicas: tuple[RunningProxy, RunningProxy], backend: BackendInfo, fresh: None
) -> None:
    first, second = replicas
    name = create_alias(first)
    assert scored(first, name) == expected(backend)
    with first.connect(database=DB) as conn:
        rows(conn, f"DROP FUNCTION {name}")
        rows(
            conn,
            f"CREATE FUNCTION {name}(a INT, b VARCHAR(20)) RETURNS INT ALIAS "
            "AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'replica-other-ep'",
        )
    assert wait_until(lambda: scored(second, name) == expected(backend, "a * 100"))


def test_another_account_gets_no_hits_from_the_first_accounts_answers(
    replicas: tuple[RunningProxy, RunningProxy], backend: BackendInfo, fresh: None
) -> None:
    first, second = replicas
    name = create_alias(first)
    assert scored(first, name, APP) == expected(backend)
    paid = len(ASKED["score"])
    assert scored(second, name, OTHER) == expected(backend)
    assert len(ASKED["score"]) - paid >= ROWS // 2  # OTHER paid for its own answers
    again = len(ASKED["score"])
    assert scored(first, name, OTHER) == expected(backend)  # now OTHER's own, shared
    assert len(ASKED["score"]) == again


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may stop (the module's replicas keep
    theirs)."""
    server, directory = start_redis()
    yield server
    server.stop()
    directory.cleanup()


def test_statements_go_on_when_redis_stops_and_each_replica_warns_once(
    backend: BackendInfo,
    own_redis: RedisServer,
    schema: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_server = own_redis
    for asked in ASKED.values():
        asked.clear()
    first, second = replica(backend, redis_server), replica(backend, redis_server)
    try:
        name = create_alias(first)
        with caplog.at_level(logging.INFO, logger="mlproxy.proxy.replicas"):
            assert scored(first, name) == expected(backend)
            redis_server.stop()
            for proxy in (first, second, first, second, second):
                assert scored(proxy, name) == expected(backend)
                with proxy.connect(database=DB) as conn:
                    assert rows(conn, f"SELECT {name}(1000, 'new')") == [(2003,)]
                    rows(conn, f"DO {name}(1001, 'newer')")
            redis_server.start()
    finally:
        first.stop()
        second.stop()
    cache_warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "in-process cache only" in r.getMessage()
    ]
    assert len(cache_warnings) == 2, [r.getMessage() for r in cache_warnings]  # one each
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert PASSWORD not in caplog.text


# -- KILL across replicas and connection ids ------------------------------------------------


def peers_of(proxy: RunningProxy) -> ReplicaPeers:
    assert proxy.server is not None and proxy.server.ctx is not None
    peers = proxy.server.ctx.peers
    assert isinstance(peers, ReplicaPeers)
    return peers


def backend_thread(connection: Connection) -> int:
    ((thread_id,),) = rows(connection, "SELECT CONNECTION_ID()")
    return int(thread_id)


def running(backend: BackendInfo, thread_id: int) -> bool:
    with admin_connect(backend) as admin:
        found = rows(
            admin,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
            f"WHERE ID = {thread_id} AND COMMAND = 'Query'",
        )
    return bool(found[0][0])


def outcome(connection: Connection, sql: str) -> tuple[str, Any]:
    try:
        return "ok", rows(connection, sql)
    except pymysql.MySQLError as exc:
        return "error", exc.args[0]


def test_kill_query_through_one_replica_stops_a_statement_on_the_other(
    replicas: tuple[RunningProxy, RunningProxy], backend: BackendInfo
) -> None:
    first, second = replicas
    answered = peers_of(first).answered
    with first.connect() as victim, second.connect() as killer:
        thread_id = backend_thread(victim)
        with ThreadPoolExecutor(1) as pool:
            sleeping = pool.submit(outcome, victim, "SELECT SLEEP(30)")
            assert wait_until(lambda: running(backend, thread_id))
            started = time.monotonic()
            assert outcome(killer, f"KILL QUERY {victim.thread_id()}") == ("ok", [])
            assert sleeping.result(timeout=10) == ("error", ER_QUERY_INTERRUPTED)
            assert time.monotonic() - started < 10
        assert rows(victim, "SELECT 1") == [(1,)]  # only the query was killed
        assert backend_thread(victim) == thread_id
    # the owner told the thread id, then was asked to stop its session's ML statement
    assert peers_of(first).answered == answered + 2


def test_kill_connection_through_one_replica_closes_the_client_on_the_other(
    replicas: tuple[RunningProxy, RunningProxy], backend: BackendInfo
) -> None:
    first, second = replicas
    victim = first.connect()
    try:
        thread_id = backend_thread(victim)
        with second.connect() as killer:
            assert outcome(killer, f"KILL CONNECTION {victim.thread_id()}") == ("ok", [])
        with admin_connect(backend) as admin:
            assert wait_until(
                lambda: (
                    not rows(
                        admin,
                        f"SELECT ID FROM information_schema.PROCESSLIST WHERE ID = {thread_id}",
                    )
                )
            )
        assert wait_until(lambda: victim.thread_id() not in sessions_of(first))
        assert outcome(victim, "SELECT 1")[0] == "error"
    finally:
        with contextlib.suppress(pymysql.MySQLError):
            victim.close()


def sessions_of(proxy: RunningProxy) -> dict[int, Any]:
    assert proxy.server is not None and proxy.server.ctx is not None
    return dict(proxy.server.ctx.sessions)


def test_connection_ids_never_collide_across_replicas(
    replicas: tuple[RunningProxy, RunningProxy], redis_session: RedisServer
) -> None:
    first, second = replicas
    opened = [proxy.connect() for proxy in (first, second) for _ in range(5)]
    try:
        ids = [conn.thread_id() for conn in opened]
        assert len(set(ids)) == len(ids)
        first_blocks = {block_of(i) or 0 for i in ids[:5]}
        second_blocks = {block_of(i) or 0 for i in ids[5:]}
        assert None not in map(block_of, ids)
        assert not first_blocks & second_blocks
        with redis_session.client() as client:
            owners = {client.get(block_key(b)) for b in first_blocks | second_blocks}
        assert len(owners) == 2 and None not in owners
        free = next(b for b in range(BLOCKS) if b not in first_blocks | second_blocks)
        unknown = PROXY_ID_BASE + free * BLOCK_SIZE + 1
        assert outcome(opened[5], f"KILL QUERY {unknown}") == ("error", ER_NO_SUCH_THREAD)
    finally:
        for conn in opened:
            conn.close()


def test_workers_of_a_replica_lease_their_own_blocks_and_kill_across_each_other(
    backend: BackendInfo, redis_session: RedisServer
) -> None:
    """``--workers 2`` with a registry: each worker is a member of its own (ids from
    leased blocks, not the static slices), and a KILL crosses workers through Redis."""
    if redis_session.process is None:
        redis_session.start()
    args = ["--listen", "127.0.0.1:0", "--backend", backend_url(backend), "--workers", "2"]
    process = ProxyProcess([*args, "--ml-cache", redis_session.url, "--shutdown-timeout", "5"])
    opened: list[Connection] = []
    try:
        process.wait_ready()
        by_block: dict[int | None, Connection] = {}
        for _ in range(100):
            opened.append(process.connect())
            by_block.setdefault(block_of(opened[-1].thread_id()), opened[-1])
            if len(by_block) == 2:
                break
        assert len(by_block) == 2 and None not in by_block, "one worker took every connection"
        victim, killer = by_block.values()
        thread_id = backend_thread(victim)
        with ThreadPoolExecutor(1) as pool:
            sleeping = pool.submit(outcome, victim, "SELECT SLEEP(30)")
            assert wait_until(lambda: running(backend, thread_id))
            assert outcome(killer, f"KILL QUERY {victim.thread_id()}") == ("ok", [])
            assert sleeping.result(timeout=10) == ("error", ER_QUERY_INTERRUPTED)
    finally:
        for connection in opened:
            with contextlib.suppress(pymysql.MySQLError):
                connection.close()
        process.signal(signal.SIGTERM)
        with contextlib.suppress(Exception):
            process.wait_exit(20)
        process.stop()
    assert PASSWORD not in "\n".join(process.lines)
