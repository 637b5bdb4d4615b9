"""Adversarial tests of the alias and ML paths (issue 10, items 1, 7, 8 and 9).

Two accounts attack as an ordinary SQL user would: READER has SELECT on one schema only;
OWNER has every privilege on its own schema only (so it may create functions there).
Each test states the attack, then checks that the proxy refuses it with a clear error and
that nothing happened on the side: no callable ran, no HTTP request reached a local
listener, no model request was made, and the proxy still serves everyone else.
"""

from __future__ import annotations

import contextlib
import doctest
import socket
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import mysql.connector
import pymysql
import pytest
from pymysql.constants import CLIENT

from ml_backends import counters, targets
from ml_backends.targets import is_aws_name
from proxy.cli.main import main
from proxy.config import load_config
from proxy.ml import status
from rewriter.ddl import AliasFunction, parse_ml_ddl
from rewriter.registry import stub_statement
from tests.conftest import (
    TEST_LOOP,
    Account,
    RunningProxy,
    admin_connect,
    start_proxy,
    unique,
)
from tests.support import security_models
from tests.support.backend import BackendInfo

READER = Account("al_reader", "reader-pw")
OWNER = Account("al_owner", "owner-pw")
#: READER's only schema (it may SELECT there), and OWNER's own schema.
SHARED_DB = "al_shared"
OWN_DB = "al_own"

#: The proxies' registry_refresh (seconds): how long a test waits for a new login's view.
REFRESH = 0.2
MODELS = "python:tests.support.security_models:"
SENTIMENT = f"{MODELS}sentiment"
ROUTES = (
    f"mapped-ep={MODELS}counted",
    f"exit-ep={MODELS}exits",
    f"interrupt-ep={MODELS}interrupts",
    f"async-exit-ep={MODELS}exits_async",
    f"generator-exit-ep={MODELS}generator_exit",
)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def accounts(backend: BackendInfo) -> Iterator[None]:
    """READER and OWNER with their schemas; a table in each with one secret row."""
    with admin_connect(backend) as admin, admin.cursor() as cur:
        for schema in (SHARED_DB, OWN_DB):
            cur.execute(f"DROP DATABASE IF EXISTS {schema}")
            cur.execute(f"CREATE DATABASE {schema} CHARACTER SET utf8mb4")
            cur.execute(f"CREATE TABLE {schema}.t (id INT PRIMARY KEY, txt VARCHAR(200))")
            cur.execute(f"INSERT INTO {schema}.t VALUES (1, 'the launch code is 4711')")
        for account in (READER, OWNER):
            cur.execute(f"DROP USER IF EXISTS '{account.user}'@'%'")
            cur.execute(f"CREATE USER '{account.user}'@'%' IDENTIFIED BY '{account.password}'")
        cur.execute(f"GRANT SELECT ON {SHARED_DB}.* TO '{READER.user}'@'%'")
        cur.execute(f"GRANT ALL ON {OWN_DB}.* TO '{OWNER.user}'@'%'")
    yield
    with admin_connect(backend) as admin, admin.cursor() as cur:
        for account in (READER, OWNER):
            cur.execute(f"DROP USER IF EXISTS '{account.user}'@'%'")
        for schema in (SHARED_DB, OWN_DB):
            cur.execute(f"DROP DATABASE IF EXISTS {schema}")


@pytest.fixture(scope="module")
def sec_proxy(backend: BackendInfo, accounts: None) -> Iterator[RunningProxy]:
    running = start_proxy(
        backend, endpoint=ROUTES, registry_refresh=REFRESH, comprehend_backend=SENTIMENT
    )
    yield running
    running.stop()


class Listener:
    """A TCP listener on 127.0.0.1 that counts connections (a stand-in for any internal
    service an attacker would like the proxy to POST to)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                client, _ = self.sock.accept()
                self.accepted += 1
                client.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    yield running
    running.close()


def run(conn: pymysql.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def error_of(conn: pymysql.Connection[Any], sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.MySQLError) as caught:
        run(conn, sql)
    return caught.value.args[0], caught.value.args[1]


def alias_ddl(name: str, kind: str, target: str) -> str:
    quoted = target.replace("\\", "\\\\").replace("'", "''")
    if kind == "sagemaker":
        return (
            f"CREATE FUNCTION {name}(x TEXT) RETURNS VARCHAR(200) "
            f"ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME '{quoted}'"
        )
    return (
        f"CREATE FUNCTION {name}(x TEXT) RETURNS TEXT "
        f"ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID '{quoted}'"
    )


def store_around_the_proxy(backend: BackendInfo, ddl: str) -> str:
    """Write an alias's stub straight into OWNER's schema (as an old proxy, or someone
    bypassing this one, would): no check of the proxy's runs. Returns its name."""
    parsed = parse_ml_ddl(ddl)
    assert isinstance(parsed, AliasFunction)
    with (
        pymysql.connect(
            host=backend.host,
            port=backend.port,
            user=OWNER.user,
            password=OWNER.password,
            database=OWN_DB,
            autocommit=True,
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(stub_statement(parsed))
    return parsed.name


def function_exists(backend: BackendInfo, name: str) -> bool:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA = %s AND ROUTINE_NAME = %s",
            (OWN_DB, name),
        )
        (count,) = cur.fetchone()
    return bool(count)


def still_serves(proxy: RunningProxy) -> None:
    """Another client of the proxy still gets answers (the process did not stop)."""
    with proxy.connect(READER, database=SHARED_DB) as other:
        assert run(other, "SELECT txt FROM t") == [("the launch code is 4711",)]


@contextlib.contextmanager
def fresh_login(
    proxy: RunningProxy, account: Account = OWNER, database: str = OWN_DB
) -> Iterator[pymysql.Connection[Any]]:
    """A login after the registry interval: the proxy reads what ``account`` sees anew."""
    time.sleep(REFRESH + 0.05)
    with proxy.connect(account, database=database) as conn:
        yield conn


def hostile_targets(port: int) -> list[str]:
    """Names that would pick code, files, URLs or hosts if they were read as targets."""
    return [
        "python:builtins:list",
        "python:sys:exit",
        "Python:os:system",
        "python:tests.support.security_models:counted",
        f"http://127.0.0.1:{port}",
        f"https://127.0.0.1:{port}/x",
        f"openai+http://127.0.0.1:{port}/v1",
        "file:///etc/passwd",
        "../../etc/passwd",
        "ep name",
        "ep\nname",
        "",
    ]


KINDS = ("sagemaker", "bedrock")


# --- item 1: SQL never chooses code, files, URLs or hosts -------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_create_refuses_every_name_that_is_not_an_aws_name(
    sec_proxy: RunningProxy, backend: BackendInfo, listener: Listener, kind: str
) -> None:
    with sec_proxy.connect(OWNER, database=OWN_DB) as conn:
        for target in hostile_targets(listener.port):
            name = unique("f")
            code, message = error_of(conn, alias_ddl(name, kind, target))
            assert code == 1210, (target, message)
            assert "endpoint map" in message
            assert not function_exists(backend, name), target
    assert listener.accepted == 0
    assert security_models.CALLS == []
    still_serves(sec_proxy)


def test_the_refusal_carries_sqlstate_hy000(sec_proxy: RunningProxy) -> None:
    conn = mysql.connector.connect(
        host=sec_proxy.host,
        port=sec_proxy.port,
        user=OWNER.user,
        password=OWNER.password,
        database=OWN_DB,
        use_pure=True,
    )
    try:
        with pytest.raises(mysql.connector.Error) as caught:
            conn.cursor().execute(alias_ddl(unique("f"), "bedrock", "python:builtins:list"))
        assert (caught.value.errno, caught.value.sqlstate) == (1210, "HY000")
    finally:
        conn.close()


@pytest.mark.parametrize("kind", KINDS)
def test_stored_definitions_with_hostile_names_never_run(
    sec_proxy: RunningProxy, backend: BackendInfo, listener: Listener, kind: str
) -> None:
    """Definitions written before the fix, or around the proxy, are checked at call time."""
    names = {
        store_around_the_proxy(backend, alias_ddl(unique("f"), kind, target)): target
        for target in hostile_targets(listener.port)
        if target  # the DDL parser itself refuses an empty name
    }
    with fresh_login(sec_proxy) as conn:
        for name, target in names.items():
            code, message = error_of(conn, f"SELECT {name}(txt) FROM t")
            assert code == 1210, (target, message)
            assert "endpoint map" in message
            assert run(conn, "SELECT 1") == [(1,)]  # the session goes on
    assert listener.accepted == 0
    assert security_models.CALLS == []
    still_serves(sec_proxy)


def test_the_issue_reproductions(
    sec_proxy: RunningProxy, backend: BackendInfo, listener: Listener
) -> None:
    """``python:builtins:list`` answered ``('hello',)``, ``python:sys:exit`` stopped the
    proxy, ``http://127.0.0.1:<port>`` made it POST to a local listener."""
    names = [
        store_around_the_proxy(backend, alias_ddl(unique("f"), kind, target))
        for kind, target in (
            ("bedrock", "python:builtins:list"),
            ("bedrock", "python:sys:exit"),
            ("sagemaker", f"http://127.0.0.1:{listener.port}"),
        )
    ]
    with fresh_login(sec_proxy) as conn:
        for name in names:
            code, _ = error_of(conn, f"SELECT {name}('hello')")
            assert code == 1210
    assert listener.accepted == 0
    still_serves(sec_proxy)


def test_an_operator_mapped_name_still_works(sec_proxy: RunningProxy) -> None:
    name = unique("f")
    with sec_proxy.connect(OWNER, database=OWN_DB) as conn:
        run(conn, alias_ddl(name, "sagemaker", "mapped-ep"))
        before = len(security_models.CALLS)
        assert run(conn, f"SELECT {name}(txt) FROM t") == [("ok",)]
        assert len(security_models.CALLS) == before + 1
        security_models.CALLS.clear()


@pytest.mark.parametrize(
    "endpoint", ["exit-ep", "interrupt-ep", "async-exit-ep", "generator-exit-ep"]
)
def test_a_python_target_that_exits_fails_its_statement_only(
    sec_proxy: RunningProxy, endpoint: str
) -> None:
    name = unique("f")
    with sec_proxy.connect(OWNER, database=OWN_DB) as conn:
        run(conn, alias_ddl(name, "sagemaker", endpoint))
        code, message = error_of(conn, f"SELECT {name}(txt) FROM t")
        assert code == 1105
        assert "raised" in message
        assert run(conn, "SELECT 2") == [(2,)]  # the same session goes on
    still_serves(sec_proxy)


@pytest.mark.parametrize(
    "target",
    ["python:builtins:list", "http://127.0.0.1:9/x", "openai+http://127.0.0.1:9/v1"],
)
def test_functions_create_refuses_what_sql_refuses(
    capsys: pytest.CaptureFixture[str],
    backend: BackendInfo,
    accounts: None,
    target: str,
) -> None:
    name = unique("f")
    url = f"mysql://{OWNER.user}:{OWNER.password}@{backend.host}:{backend.port}/{OWN_DB}"
    for flag in ("--endpoint", "--model-id"):
        capsys.readouterr()
        argv = ["functions", "create", name, "--args", "x TEXT", "--returns", "VARCHAR(20)"]
        code = main([*argv, flag, target, "--backend", url])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "ERROR 1210 (HY000)" in err and "endpoint map" in err
        assert not function_exists(backend, name)


@pytest.mark.parametrize(
    ("kind", "name", "valid"),
    [
        ("sagemaker", "tuning-job-123", True),
        ("sagemaker", "a" * 63, True),
        ("sagemaker", "a" * 64, False),
        ("sagemaker", "ep--1", True),
        ("sagemaker", "-ep", False),
        ("sagemaker", "ep_1", False),
        ("sagemaker", "ep.internal", False),
        ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", True),
        ("bedrock", "us.anthropic.claude-3-5-sonnet-20240620-v1:0", True),
        ("bedrock", "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2", True),
        ("bedrock", "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdef123456", True),
        ("bedrock", "python:builtins:list", False),
        ("bedrock", "http://127.0.0.1:1", False),
        ("bedrock", "file:///etc/passwd", False),
        ("bedrock", "a/b", False),
        ("bedrock", "a" * 2049, False),
        ("bedrock", "", False),
    ],
)
def test_aws_naming_rules(kind: str, name: str, valid: bool) -> None:
    assert is_aws_name(kind, name) is valid


# --- item 9: the registry sees what any session sees; EXPLAIN needs no extra privilege ---


@pytest.fixture(scope="module")
def reader_polled_proxy(backend: BackendInfo, accounts: None) -> Iterator[RunningProxy]:
    """A proxy whose registry poller logs in as READER, who sees none of OWNER's functions."""
    reader_url = f"mysql://{READER.user}:{READER.password}@{backend.host}:{backend.port}"
    settings = {
        "listen": "127.0.0.1:0",
        "backend": reader_url,
        "endpoint": ROUTES,
        "registry_refresh": REFRESH,
        "shutdown_timeout": 5,
        "loop": TEST_LOOP,
    }
    running = RunningProxy(load_config(settings, env={}), backend).start()
    yield running
    running.stop()


def test_a_function_the_poller_cannot_see_keeps_working(
    reader_polled_proxy: RunningProxy,
) -> None:
    """It worked at once, then one poll later answered 1644 "call it through mlproxy"."""
    name = unique("f")
    with reader_polled_proxy.connect(OWNER, database=OWN_DB) as conn:
        run(conn, alias_ddl(name, "sagemaker", "mapped-ep"))
        assert run(conn, f"SELECT {name}(txt) FROM t") == [("ok",)]
        time.sleep(REFRESH * 4)  # several polls that cannot see it
        assert run(conn, f"SELECT {name}(txt) FROM t") == [("ok",)]
    with fresh_login(reader_polled_proxy) as conn:
        assert run(conn, f"SELECT {name}(txt) FROM t") == [("ok",)]
    security_models.CALLS.clear()


def test_a_function_created_around_the_proxy_is_callable_after_a_login(
    reader_polled_proxy: RunningProxy, backend: BackendInfo
) -> None:
    name = store_around_the_proxy(backend, alias_ddl(unique("f"), "sagemaker", "mapped-ep"))
    with fresh_login(reader_polled_proxy) as conn:
        assert run(conn, f"SELECT {name}(txt) FROM t") == [("ok",)]
    security_models.CALLS.clear()


def test_explain_of_an_ml_statement_needs_no_create_temporary_tables(
    sec_proxy: RunningProxy,
) -> None:
    with sec_proxy.connect(READER, database=SHARED_DB) as conn:
        code, _ = error_of(conn, "CREATE TEMPORARY TABLE tmp_probe (x INT)")
        assert code == 1044  # READER really lacks the privilege
        rows = run(conn, "EXPLAIN SELECT aws_comprehend_detect_sentiment(txt, 'en') FROM t")
        assert rows and rows[0][2] == "t"  # the backend's plan of the rewritten statement
        rows = run(
            conn,
            "EXPLAIN SELECT id FROM t WHERE aws_comprehend_detect_sentiment(txt, 'en') = 'NEUTRAL'",
        )
        assert rows and rows[0][2] == "t"
        assert run(conn, "SELECT 1") == [(1,)]


def test_the_logins_registry_read_leaves_no_trace_in_the_session(
    reader_polled_proxy: RunningProxy, backend: BackendInfo
) -> None:
    """What a client's first statement sees is what it sees directly (the proxy read the
    account's alias names on the session's connection at login)."""
    first = "SELECT FOUND_ROWS(), ROW_COUNT(), @@warning_count"
    store_around_the_proxy(backend, alias_ddl(unique("f"), "sagemaker", "mapped-ep"))
    with fresh_login(reader_polled_proxy) as through:
        seen = run(through, first)
    with pymysql.connect(
        host=backend.host,
        port=backend.port,
        user=OWNER.user,
        password=OWNER.password,
        database=OWN_DB,
        autocommit=True,
    ) as direct:
        assert seen == run(direct, first)


# --- item 7: no model request for a statement the client may not run -------------------


@pytest.fixture
def fresh_texts(backend: BackendInfo, accounts: None) -> Iterator[str]:
    """A table in READER's schema whose texts no model has seen (no cache can answer),
    and ``dst`` beside it; both dropped afterwards."""
    table = unique("src")
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"CREATE TABLE {SHARED_DB}.{table} (id INT PRIMARY KEY, txt VARCHAR(200))")
        cur.execute(
            f"INSERT INTO {SHARED_DB}.{table} VALUES (1, %s), (2, %s)",
            (unique("text"), unique("text")),
        )
        cur.execute(f"CREATE TABLE {SHARED_DB}.dst_{table} (s VARCHAR(20))")
        cur.execute(f"CREATE TABLE {OWN_DB}.dst_{table} (s VARCHAR(20))")
    yield table
    with admin_connect(backend) as admin, admin.cursor() as cur:
        for name in (f"{SHARED_DB}.{table}", f"{SHARED_DB}.dst_{table}", f"{OWN_DB}.dst_{table}"):
            cur.execute(f"DROP TABLE IF EXISTS {name}")


CALL = "aws_comprehend_detect_sentiment(txt, 'en')"

#: Statements whose inputs READER may read but which it may not run.
READER_REFUSED = (
    "INSERT INTO dst_{t} SELECT " + CALL + " FROM {t}",
    "REPLACE INTO dst_{t} SELECT " + CALL + " FROM {t}",
    "INSERT INTO dst_{t} (s) VALUES (aws_comprehend_detect_sentiment('hello there', 'en'))",
    "UPDATE {t} SET txt = " + CALL,
    "DELETE FROM {t} WHERE " + CALL + " = 'NEUTRAL'",
    "CREATE TABLE made_{t} AS SELECT " + CALL + " AS s FROM {t}",
)


@pytest.mark.parametrize("statement", READER_REFUSED)
def test_a_statement_the_client_may_not_run_costs_no_model_request(
    sec_proxy: RunningProxy, fresh_texts: str, statement: str
) -> None:
    sql = statement.format(t=fresh_texts).replace("'hello there'", f"'{unique('hello')}'")
    before = len(security_models.SENTIMENT_CALLS)
    with sec_proxy.connect(READER, database=SHARED_DB) as conn:
        code, message = error_of(conn, sql)
        assert code == 1142, message  # the backend's own "command denied to user"
        assert "command denied" in message
        assert run(conn, "SELECT 1") == [(1,)]
    assert len(security_models.SENTIMENT_CALLS) == before


def test_a_write_into_another_accounts_schema_costs_no_model_request(
    sec_proxy: RunningProxy, fresh_texts: str
) -> None:
    """OWNER may do anything in its own schema, nothing in READER's."""
    before = len(security_models.SENTIMENT_CALLS)
    with sec_proxy.connect(OWNER, database=OWN_DB) as conn:
        code, _ = error_of(
            conn,
            f"INSERT INTO {SHARED_DB}.dst_{fresh_texts} "
            f"SELECT aws_comprehend_detect_sentiment(txt, 'en') FROM t",
        )
        assert code == 1142
    assert len(security_models.SENTIMENT_CALLS) == before


def test_a_statement_the_client_may_run_still_runs(
    sec_proxy: RunningProxy, backend: BackendInfo, fresh_texts: str
) -> None:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"GRANT SELECT ON {SHARED_DB}.{fresh_texts} TO '{OWNER.user}'@'%'")
    try:
        before = len(security_models.SENTIMENT_CALLS)
        with sec_proxy.connect(OWNER, database=OWN_DB) as conn:
            run(
                conn,
                f"INSERT INTO dst_{fresh_texts} "
                f"SELECT aws_comprehend_detect_sentiment(txt, 'en') FROM {SHARED_DB}.{fresh_texts}",
            )
            assert run(conn, f"SELECT s FROM dst_{fresh_texts}") == [("NEUTRAL",), ("NEUTRAL",)]
        assert len(security_models.SENTIMENT_CALLS) == before + 1
    finally:
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"REVOKE SELECT ON {SHARED_DB}.{fresh_texts} FROM '{OWNER.user}'@'%'")


# --- item 8: counters and the cache tell no account about rows it cannot read -----------


def ml_status(conn: pymysql.Connection[Any], scope: str = "") -> dict[str, int]:
    found = run(conn, f"SHOW {scope} STATUS LIKE 'Aurora_ml%'")
    return {name: int(value) for name, value in found}


@pytest.fixture
def secret(backend: BackendInfo, accounts: None) -> Iterator[str]:
    """A row of OWNER's that READER cannot read, with a text no model has seen."""
    text = unique("the launch code is")
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"INSERT INTO {OWN_DB}.t VALUES (2, %s)", (text,))
    yield text
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"DELETE FROM {OWN_DB}.t WHERE id = 2")


def test_a_right_guess_of_a_row_one_cannot_read_moves_no_counter(
    sec_proxy: RunningProxy, secret: str
) -> None:
    with sec_proxy.connect(OWNER, database=OWN_DB) as owner:
        run(owner, "SELECT aws_comprehend_detect_sentiment(txt, 'en') FROM t WHERE id = 2")
    with sec_proxy.connect(READER, database=SHARED_DB) as reader:
        code, _ = error_of(reader, f"SELECT txt FROM {OWN_DB}.t")
        assert code == 1142  # READER really cannot read it
        moved = {}
        for guess in (unique("a wrong guess"), secret):
            before, requests = ml_status(reader), len(security_models.SENTIMENT_CALLS)
            run(reader, f"SELECT aws_comprehend_detect_sentiment('{guess}', 'en')")
            after = ml_status(reader)
            moved[guess] = (
                {name: after[name] - before[name] for name in after},
                len(security_models.SENTIMENT_CALLS) - requests,
            )
        # The right guess looks exactly like a wrong one: a model request, no cache hit.
        assert moved[secret] == next(iter(moved.values()))
        assert moved[secret][0]["Aurora_ml_cache_hit_cnt"] == 0
        assert moved[secret][1] == 1
        assert ml_status(reader, "GLOBAL") == {}  # READER lacks PROCESS


def test_session_counters_are_the_sessions_own(sec_proxy: RunningProxy) -> None:
    with (
        sec_proxy.connect(READER, database=SHARED_DB) as mine,
        sec_proxy.connect(READER, database=SHARED_DB) as other,
    ):
        assert set(ml_status(mine).values()) == {0}  # a new session starts at zero
        others_before = ml_status(other, "SESSION")
        run(mine, f"SELECT aws_comprehend_detect_sentiment('{unique('mine')}', 'en')")
        assert ml_status(mine)["Aurora_ml_logical_request_cnt"] == 1
        assert ml_status(mine, "LOCAL")["Aurora_ml_actual_request_cnt"] == 1
        assert ml_status(other, "SESSION") == others_before


def test_global_counters_need_the_process_privilege(
    sec_proxy: RunningProxy, backend: BackendInfo
) -> None:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"GRANT PROCESS ON *.* TO '{READER.user}'@'%'")
    try:
        with sec_proxy.connect(READER, database=SHARED_DB) as reader:
            before = ml_status(reader, "GLOBAL")
            assert len(before) == 7
            with sec_proxy.connect(OWNER, database=OWN_DB) as owner:
                run(owner, f"SELECT aws_comprehend_detect_sentiment('{unique('x')}', 'en')")
            after = ml_status(reader, "GLOBAL")
            assert after["Aurora_ml_actual_request_cnt"] > before["Aurora_ml_actual_request_cnt"]
    finally:
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"REVOKE PROCESS ON *.* FROM '{READER.user}'@'%'")
    with sec_proxy.connect(READER, database=SHARED_DB) as reader:
        assert ml_status(reader, "GLOBAL") == {}
        assert len(ml_status(reader)) == 7  # its own session's: always


def test_sessions_of_one_account_still_share_answers(sec_proxy: RunningProxy) -> None:
    text = unique("shared")
    with sec_proxy.connect(READER, database=SHARED_DB) as first:
        run(first, f"SELECT aws_comprehend_detect_sentiment('{text}', 'en')")
    requests = len(security_models.SENTIMENT_CALLS)
    with sec_proxy.connect(READER, database=SHARED_DB) as second:
        run(second, f"SELECT aws_comprehend_detect_sentiment('{text}', 'en')")
        assert ml_status(second)["Aurora_ml_cache_hit_cnt"] == 1
    assert len(security_models.SENTIMENT_CALLS) == requests


@pytest.mark.parametrize("module", [targets, counters, status])
def test_doctests(module: ModuleType) -> None:
    assert doctest.testmod(module).failed == 0


def test_a_login_with_an_expired_password_still_gets_in_to_change_it(
    sec_proxy: RunningProxy, backend: BackendInfo
) -> None:
    """The login's read of the account's alias names must not stop a session that may
    run nothing but SET PASSWORD."""
    account = Account(unique("al_expired"), "old-pw")
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"CREATE USER '{account.user}'@'%' IDENTIFIED BY '{account.password}'")
        cur.execute(f"ALTER USER '{account.user}'@'%' PASSWORD EXPIRE")
    try:
        time.sleep(REFRESH + 0.05)
        with sec_proxy.connect(
            account, database=None, client_flag=CLIENT.HANDLE_EXPIRED_PASSWORDS
        ) as conn:
            assert error_of(conn, "SELECT 1")[0] == 1820  # must SET PASSWORD first
            run(conn, "SET PASSWORD = PASSWORD('new-pw')")
            assert run(conn, "SELECT 1") == [(1,)]
    finally:
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{account.user}'@'%'")
