"""Endpoint aliases end to end: CREATE FUNCTION ... ALIAS through the proxy, the registry
in the backend (persistence, sharing between proxies, privileges), calls, SHOW, DROP.

The models are in-process callables (tests/support/alias_test_models.py) reached through the
endpoint map, so each test can check exactly what a model received.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pymysql
import pytest

from proxy.cli.explain import explain
from proxy.config import load_config
from rewriter.ddl import AliasFunction, parse_ml_ddl
from rewriter.registry import stub_statement
from tests.conftest import (
    APP,
    OTHER,
    RunningProxy,
    admin_connect,
    private_database,
    start_proxy,
    unique,
    wait_until,
)
from tests.support.alias_test_models import BATCHES
from tests.support.backend import BackendInfo

MODELS = "python:tests.support.alias_test_models:"
ROUTES = (
    f"score-ep={MODELS}score",
    f"other-ep={MODELS}other_score",
    f"typed-ep={MODELS}typed",
    f"chat-model={MODELS}echo",
    f"slow-ep={MODELS}slow",
    f"it's\\odd={MODELS}score",
)


def alias_ddl(name: str, endpoint: str = "score-ep", returns: str = "INT", extra: str = "") -> str:
    return (
        f"CREATE FUNCTION {name}(a INT, b VARCHAR(20)) RETURNS {returns} "
        f"ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME '{endpoint}' {extra}"
    )


#: The module's own database: its tables and functions go with it at the end.
DB = "mlproxy_aliases"


@pytest.fixture(scope="module")
def schema(backend: BackendInfo) -> Iterator[str]:
    """The module's own database: its tables and functions go with it at the end."""
    with private_database(backend, DB) as name:
        yield name


@pytest.fixture(scope="module")
def aliases_proxy(backend: BackendInfo, schema: str) -> Iterator[RunningProxy]:
    running = start_proxy(backend, endpoint=ROUTES, registry_refresh=0.2)
    yield running
    running.stop()


@pytest.fixture
def db(aliases_proxy: RunningProxy) -> Iterator[pymysql.Connection[Any]]:
    connection = aliases_proxy.connect(database=DB)
    yield connection
    connection.close()


@pytest.fixture
def direct(backend: BackendInfo, schema: str) -> Iterator[pymysql.Connection[Any]]:
    """The same account straight to the backend."""
    connection = pymysql.connect(
        host=backend.host,
        port=backend.port,
        user=APP.user,
        password=APP.password,
        database=schema,
        autocommit=True,
    )
    yield connection
    connection.close()


def run(conn: pymysql.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def error_of(conn: pymysql.Connection[Any], sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.MySQLError) as caught:
        run(conn, sql)
    code, message = caught.value.args[0], caught.value.args[1]
    return code, message


@pytest.fixture
def numbers(db: pymysql.Connection[Any]) -> str:
    table = unique("n")
    run(db, f"CREATE TABLE {table} (id INT PRIMARY KEY, a INT, b VARCHAR(20))")
    run(db, f"INSERT INTO {table} VALUES (1, 3, 'xy'), (2, NULL, 'z'), (3, 5, NULL), (4, 3, 'xy')")
    return table


# --- create, call, show, drop -----------------------------------------------------------


def test_created_alias_is_callable_and_its_answers_cast_to_the_declared_type(
    db: pymysql.Connection[Any], numbers: str
) -> None:
    name = unique("f")
    run(db, alias_ddl(name, returns="DECIMAL(8,2)"))
    rows = run(db, f"SELECT id, {name}(a, b) FROM {numbers} ORDER BY id")
    assert rows == [(1, Decimal("8.00")), (2, None), (3, Decimal("10.00")), (4, Decimal("8.00"))]
    assert run(db, f"SELECT {name}(1, 'abc') + 1") == [(Decimal("6.00"),)]


def test_arguments_reach_the_model_as_their_declared_types(db: pymysql.Connection[Any]) -> None:
    name = unique("f")
    run(
        db,
        f"CREATE FUNCTION {name}(a BIGINT, b DECIMAL(6,2), c DOUBLE, d VARCHAR(5), e TEXT) "
        "RETURNS VARCHAR(100) ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'typed-ep'",
    )
    # '7' becomes an integer, 1.5 a DECIMAL(6,2), '2e0' a double: as parameters would.
    rows = run(db, f"SELECT {name}('7', 1.5, '2e0', 'abcdefgh', NULL)")
    assert rows == [("int,Decimal,float,str,NoneType",)]


def test_rows_are_batched_and_repeated_inputs_asked_once(
    db: pymysql.Connection[Any], numbers: str
) -> None:
    name = unique("f")
    run(db, alias_ddl(name, extra="MAX_BATCH_SIZE 2"))
    BATCHES["score"].clear()
    run(db, f"SELECT {name}(a, b) FROM {numbers}")
    sent = [row for batch in BATCHES["score"] for row in batch]
    assert sorted(sent, key=repr) == sorted([(3, "xy"), (None, "z"), (5, None)], key=repr)
    assert all(len(batch) <= 2 for batch in BATCHES["score"])


def test_show_create_function_shows_the_aurora_ddl(db: pymysql.Connection[Any]) -> None:
    name = unique("f")
    run(db, alias_ddl(name, returns="varchar(2048) charset utf8mb4", extra="max_batch_size 7"))
    ((function, _mode, text, *_),) = run(db, f"SHOW CREATE FUNCTION {name}")
    assert function == name
    assert text == (
        f"CREATE DEFINER=`{APP.user}`@`%` FUNCTION `{name}`(`a` INT, `b` VARCHAR(20)) "
        "RETURNS VARCHAR(2048) CHARSET utf8mb4 SQL SECURITY DEFINER "
        "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'score-ep' MAX_BATCH_SIZE 7"
    )
    qualified = run(db, f"SHOW CREATE FUNCTION `{DB}`.`{name}`")
    assert qualified[0][2] == text


def test_show_create_of_an_ordinary_function_is_the_backends(
    db: pymysql.Connection[Any], direct: pymysql.Connection[Any]
) -> None:
    name = unique("plain")
    run(db, f"CREATE FUNCTION {name}(x INT) RETURNS INT DETERMINISTIC RETURN x + 1")
    assert run(db, f"SHOW CREATE FUNCTION {name}") == run(direct, f"SHOW CREATE FUNCTION {name}")
    assert run(db, f"SELECT {name}(1)") == [(2,)]


def test_aliases_are_listed_by_show_function_status(db: pymysql.Connection[Any]) -> None:
    name = unique("f")
    run(db, alias_ddl(name))
    rows = run(db, f"SHOW FUNCTION STATUS WHERE Db = '{DB}' AND Name = '{name}'")
    assert [(r[0], r[1], r[2]) for r in rows] == [(DB, name, "FUNCTION")]


def test_a_call_that_bypasses_the_proxy_fails_loudly(
    db: pymysql.Connection[Any], direct: pymysql.Connection[Any]
) -> None:
    name = unique("f")
    run(db, alias_ddl(name))
    code, message = error_of(direct, f"SELECT {name}(1, 'a')")
    assert code == 1644
    assert "call it through mlproxy" in message


def test_drop_function_removes_the_alias(db: pymysql.Connection[Any]) -> None:
    name = unique("f")
    run(db, alias_ddl(name))
    run(db, f"DROP FUNCTION IF EXISTS `{DB}`.{name}")
    assert error_of(db, f"SELECT {name}(1, 'a')")[0] == 1305
    run(db, f"DROP FUNCTION IF EXISTS {name}")  # no error the second time
    assert error_of(db, f"DROP FUNCTION {name}")[0] == 1305


def test_a_redefinition_is_used_at_once_not_the_old_cached_answers(
    db: pymysql.Connection[Any],
) -> None:
    name = unique("f")
    run(db, alias_ddl(name))
    assert run(db, f"SELECT {name}(4, 'ab')") == [(10,)]
    run(db, f"DROP FUNCTION {name}")
    run(db, alias_ddl(name, endpoint="other-ep"))
    assert run(db, f"SELECT {name}(4, 'ab')") == [(400,)]


# --- the DDL's forms and errors -----------------------------------------------------------


def test_grammar_variants_through_the_proxy(db: pymysql.Connection[Any]) -> None:
    name = unique("f")
    run(
        db,
        f"/* made by a tool */ create definer = current_user function `{DB}`.`{name}` "
        "(`a` int, b varchar(20) charset utf8mb4) returns int sql security invoker "
        "-- the model\n alias aws_sagemaker_invoke_endpoint endpoint name 'score-ep';",
    )
    assert run(db, f"SELECT `{name}`(2, 'abc')") == [(7,)]
    text = run(db, f"SHOW CREATE FUNCTION {name}")[0][2]
    assert "SQL SECURITY INVOKER" in text


@pytest.mark.parametrize(
    ("opener", "runs"),
    [("/*!50003", True), ("/*M!100000", True), ("/*!50700", False), ("/*!999999", False)],
)
def test_ddl_in_an_executable_comment_runs_when_the_server_runs_it(
    db: pymysql.Connection[Any], direct: pymysql.Connection[Any], opener: str, runs: bool
) -> None:
    """MariaDB skips /*!50700 ... */ and comments newer than itself: so does the proxy
    (no alias made behind an empty query), and it makes the alias where the server
    would run the code (a mysqldump's /*!50003 CREATE*/)."""
    name = unique("f")
    ddl = (
        f"{opener} CREATE FUNCTION {name}(a INT, b VARCHAR(20)) RETURNS INT "
        "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'score-ep' */"
    )
    if runs:
        run(db, ddl)
        assert run(db, f"SELECT {name}(2, 'abc')") == [(7,)]
    else:
        assert run(db, ddl) == run(direct, ddl) == []  # a comment alone: an empty OK
        assert error_of(db, f"SELECT {name}(2, 'abc')")[0] == 1305  # no such function


@pytest.mark.parametrize(
    ("ddl", "code", "fragment"),
    [
        (
            "CREATE FUNCTION f(a INT RETURNS INT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT "
            "ENDPOINT NAME 'x'",
            1064,
            "near 'RETURNS INT",
        ),
        (
            "CREATE FUNCTION f(a INT) RETURNS JSON ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT "
            "ENDPOINT NAME 'x'",
            1235,
            "JSON",
        ),
        (
            "CREATE FUNCTION f(a INT) RETURNS INT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT "
            "ENDPOINT NAME 'x' MAX_BATCH_SIZE 0",
            1210,
            "MAX_BATCH_SIZE",
        ),
        (
            "CREATE FUNCTION f(a INT, b INT) RETURNS TEXT ALIAS AWS_BEDROCK_INVOKE_MODEL "
            "MODEL ID 'm'",
            1064,
            "near",
        ),
    ],
)
def test_malformed_ddl_gets_a_mysql_error(
    db: pymysql.Connection[Any], ddl: str, code: int, fragment: str
) -> None:
    got_code, message = error_of(db, ddl)
    assert got_code == code
    assert fragment in message


def test_backend_errors_of_the_create_are_the_backends(db: pymysql.Connection[Any]) -> None:
    name = unique("f")
    run(db, alias_ddl(name))
    assert error_of(db, alias_ddl(name))[0] == 1304  # already exists
    no_db = pymysql.connect(
        host=db.host, port=db.port, user=APP.user, password=APP.password, autocommit=True
    )
    try:
        assert error_of(no_db, alias_ddl(unique("f")))[0] == 1046  # no database selected
    finally:
        no_db.close()


def test_creating_needs_the_privilege_to_create_a_function(
    aliases_proxy: RunningProxy, backend: BackendInfo
) -> None:
    schema = unique("locked")
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {schema}")
        cur.execute(f"GRANT SELECT ON {schema}.* TO '{OTHER.user}'@'%'")
    other = aliases_proxy.connect(OTHER, database=schema)
    try:
        code, _ = error_of(other, alias_ddl("f"))
        assert code == 1044  # access denied to database: as CREATE FUNCTION itself
    finally:
        other.close()
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE {schema}")


def test_quotes_and_backslashes_in_endpoint_names_survive_every_sql_mode(
    db: pymysql.Connection[Any],
) -> None:
    for mode in ("", "NO_BACKSLASH_ESCAPES"):
        run(db, f"SET SESSION sql_mode = '{mode}'")
        name = unique("f")
        endpoint = "it''s\\\\odd" if mode == "" else "it''s\\odd"
        run(db, alias_ddl(name, endpoint=endpoint))
        assert run(db, f"SELECT {name}(1, 'a')") == [(3,)]
        text = run(db, f"SHOW CREATE FUNCTION {name}")[0][2]
        assert "ENDPOINT NAME 'it''s\\\\odd'" in text


# --- schemas ------------------------------------------------------------------------------


def test_functions_are_schema_objects(
    aliases_proxy: RunningProxy, backend: BackendInfo, numbers: str
) -> None:
    schema = unique("elsewhere")
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {schema}")
        cur.execute(f"GRANT ALL ON {schema}.* TO '{APP.user}'@'%'")
    conn = aliases_proxy.connect(database=schema)
    try:
        name = unique("f")
        run(conn, alias_ddl(f"`{DB}`.{name}"))  # created in another schema
        assert error_of(conn, f"SELECT {name}(1, 'a')")[0] == 1305  # not in this one
        rows = run(conn, f"SELECT id, {DB}.{name}(a, b) FROM {DB}.{numbers} ORDER BY id")
        assert rows == [(1, 8), (2, None), (3, 10), (4, 8)]
        # The same name in two schemas: each call reaches its own definition.
        run(conn, alias_ddl(name, endpoint="other-ep"))
        assert run(conn, f"SELECT {name}(1, 'a'), {DB}.{name}(1, 'a')") == [(100, 3)]
    finally:
        conn.close()
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE {schema}")


def test_a_column_named_like_an_alias_is_not_a_call(
    db: pymysql.Connection[Any], numbers: str
) -> None:
    name = unique("f")
    run(db, alias_ddl(name))
    table = unique("t")
    run(db, f"CREATE TABLE {table} ({name} INT)")
    run(db, f"INSERT INTO {table} VALUES (5)")
    assert run(db, f"SELECT {name} FROM {table}") == [(5,)]
    assert run(db, f"SELECT '{name}(1, 2)'") == [(f"{name}(1, 2)",)]


# --- the registry is the backend's -----------------------------------------------------------


def test_a_function_created_through_one_proxy_is_callable_through_another(
    aliases_proxy: RunningProxy, backend: BackendInfo, numbers: str
) -> None:
    second = start_proxy(backend, endpoint=ROUTES, registry_refresh=1.0)
    try:
        conn = second.connect(database=DB)
        run(conn, "SELECT 1")  # logged in: its registry is loaded
        name = unique("f")
        creator = aliases_proxy.connect(database=DB)
        run(creator, alias_ddl(name))
        creator.close()

        def callable_there() -> bool:
            try:
                return run(conn, f"SELECT {name}(1, 'ab')") == [(4,)]
            except pymysql.MySQLError:
                return False

        assert wait_until(callable_there, within=3.0)
        conn.close()
    finally:
        second.stop()


def test_the_registry_survives_a_restart(backend: BackendInfo, schema: str) -> None:
    first = start_proxy(backend, endpoint=ROUTES)
    name = unique("f")
    try:
        conn = first.connect(database=DB)
        run(conn, alias_ddl(name))
        conn.close()
    finally:
        first.stop()
    second = start_proxy(backend, endpoint=ROUTES)
    try:
        conn = second.connect(database=DB)
        assert run(conn, f"SELECT {name}(2, 'a')") == [(5,)]
        conn.close()
    finally:
        second.stop()


def test_the_poller_uses_the_backend_urls_account_when_given(
    backend: BackendInfo, schema: str
) -> None:
    name = unique("f")
    parsed = parse_ml_ddl(alias_ddl(name))
    assert isinstance(parsed, AliasFunction)
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"USE {DB}")
        cur.execute(stub_statement(parsed))  # as `mlproxy functions create` does
    url = f"mysql://{backend.admin_user}:{backend.admin_password}@{backend.host}:{backend.port}"
    settings = {"listen": "127.0.0.1:0", "backend": url, "endpoint": ROUTES}
    running = RunningProxy(load_config({**settings, "registry_refresh": 0.2}, env={}), backend)
    running.start()
    try:
        assert running.server is not None and running.server.ctx is not None
        registry = running.server.ctx.registry
        assert wait_until(lambda: name in registry.names, within=3.0)  # before any client
        conn = running.connect(database=DB)
        assert run(conn, f"SELECT {name}(2, 'a')") == [(5,)]
        conn.close()
    finally:
        running.stop()


# --- Bedrock-style aliases and timeouts ------------------------------------------------------


def test_a_bedrock_alias_sends_one_body_and_returns_the_models_body(
    db: pymysql.Connection[Any],
) -> None:
    name = unique("ask")
    run(
        db,
        f"CREATE FUNCTION {name}(body TEXT) RETURNS TEXT "
        "ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'chat-model' TIMEOUT_MS 5000",
    )
    table = unique("q")
    run(db, f"CREATE TABLE {table} (id INT, prompt VARCHAR(50))")
    run(db, f"INSERT INTO {table} VALUES (1, 'hello'), (2, 'bye'), (3, NULL)")
    rows = run(
        db,
        f"SELECT id, JSON_UNQUOTE(JSON_EXTRACT({name}(IF(prompt IS NULL, NULL, "
        f"JSON_OBJECT('prompt', prompt))), '$.completion')) FROM {table} ORDER BY id",
    )
    assert rows == [(1, "HELLO"), (2, "BYE"), (3, None)]
    sent = [json.loads(body) for batch in BATCHES["echo"] for (body,) in batch]
    assert {"prompt": "hello"} in sent


def test_aurora_ml_inference_timeout_bounds_each_request(backend: BackendInfo, schema: str) -> None:
    running = start_proxy(backend, endpoint=ROUTES, ml_max_attempts=1)
    try:
        conn = running.connect(database=DB)
        name = unique("f")
        run(conn, alias_ddl(name, endpoint="slow-ep"))
        assert run(conn, f"SELECT {name}(1, 'a')") == [(1,)]  # 0.5 s: within the default
        run(conn, "SET SESSION aurora_ml_inference_timeout = 100")
        code, message = error_of(conn, f"SELECT {name}(2, 'a')")
        assert code == 1105
        assert "no answer in 0.1s" in message
        # A function's own TIMEOUT_MS wins over the session's setting.
        ask = unique("ask")
        run(
            conn,
            f"CREATE FUNCTION {ask}(body TEXT) RETURNS TEXT "
            "ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'slow-ep' TIMEOUT_MS 2000",
        )
        assert run(conn, f"SELECT {ask}('x')") == [("1",)]
        run(conn, "SET aurora_ml_inference_timeout = DEFAULT")
        assert run(conn, f"SELECT {name}(3, 'a')") == [(1,)]
        run(
            conn,
            f"CREATE FUNCTION {ask}_short(body TEXT) RETURNS TEXT "
            "ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'slow-ep' TIMEOUT_MS 100",
        )
        assert "no answer in 0.1s" in error_of(conn, f"SELECT {ask}_short('y')")[1]
        conn.close()
    finally:
        running.stop()


def test_an_unroutable_endpoint_gets_a_clear_error(db: pymysql.Connection[Any]) -> None:
    name = unique("f")
    run(db, alias_ddl(name, endpoint="no-such-endpoint"))
    code, message = error_of(db, f"SELECT {name}(1, 'a')")
    assert code == 1105
    assert "no-such-endpoint" in message


def test_mlproxy_explain_knows_the_aliases(
    db: pymysql.Connection[Any], backend: BackendInfo, numbers: str
) -> None:
    name = unique("f")
    run(db, alias_ddl(name))
    url = f"mysql://{APP.user}:{APP.password}@{backend.host}:{backend.port}/{DB}"
    config = load_config({"backend": url, "endpoint": ROUTES}, env={})
    report = asyncio.run(explain(config, f"SELECT {name}(a, b) FROM {numbers}"))
    assert f"#0 {name}(" in report
    # Four rows, three distinct argument pairs: one request of the python model.
    assert "1 request(s) for 3 distinct input(s)" in report
    assert f"'{MODELS}score'" in report
