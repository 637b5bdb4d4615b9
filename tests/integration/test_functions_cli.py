"""``mlproxy functions create | list | show | drop`` against the test backend.

The command manages the registry the SQL DDL writes, so each test checks the CLI against
the proxy: a function created from the shell is called through a running proxy, ``show``
prints what SHOW CREATE FUNCTION shows through the proxy, and the CLI's errors for a bad
definition or a missing privilege are the very messages a client of the proxy gets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest

from proxy.cli.main import main
from rewriter.ddl import AliasFunction, parse_ml_ddl
from tests.conftest import (
    APP,
    TEST_DB,
    Account,
    RunningProxy,
    admin_connect,
    start_proxy,
    unique,
    wait_until,
)
from tests.support.alias_models import score
from tests.support.backend import BackendInfo

ENDPOINT = "cli-ep"
SCRIPT = Path(sys.executable).with_name("mlproxy")


def url(backend: BackendInfo, account: Account = APP, database: str | None = TEST_DB) -> str:
    return f"mysql://{account.user}:{account.password}@{backend.host}:{backend.port}/" + (
        database or ""
    )


@pytest.fixture(scope="module")
def alias_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    running = start_proxy(
        backend,
        endpoint=(f"{ENDPOINT}=python:tests.support.alias_models:score_batch",),
        registry_refresh=0.2,
    )
    yield running
    running.stop()


def cli(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo, *argv: str, **options: Any
) -> tuple[int, str, str]:
    """Run ``mlproxy functions ARGV --backend URL`` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(["functions", *argv, "--backend", url(backend, **options)])
    out, err = capsys.readouterr()
    return code, out, err


def create_args(name: str, endpoint: str = ENDPOINT) -> list[str]:
    return [
        "create", name, "--args", "a INT, b VARCHAR(10)", "--returns", "DECIMAL(8,2)",
        "--endpoint", endpoint, "--max-batch-size", "50",
    ]  # fmt: skip


def proxy_error(proxy: RunningProxy, sql: str, account: Account = APP) -> str:
    """The error a client of the proxy gets for ``sql``, as the CLI prints it."""
    with (
        proxy.connect(account) as conn,
        conn.cursor() as cur,
        pytest.raises(pymysql.MySQLError) as caught,
    ):
        cur.execute(sql)
    code, message = caught.value.args
    return f"{code}: {message}"


def drop_function(backend: BackendInfo, name: str) -> None:
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute(f"DROP FUNCTION IF EXISTS {TEST_DB}.{name}")


# --- create, then call through a proxy -------------------------------------------------------


def test_created_function_is_called_through_a_running_proxy(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo, alias_proxy: RunningProxy
) -> None:
    name, table = unique("fn"), unique()
    with alias_proxy.connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, a INT, b VARCHAR(10))")
        cur.execute(f"INSERT INTO {table} VALUES (1, 3, 'xy'), (2, NULL, 'z'), (3, 5, 'abcde')")
    try:
        code, out, err = cli(capsys, backend, *create_args(name))
        assert (code, err) == (0, "")
        assert out == f"created {TEST_DB}.{name}: SageMaker endpoint '{ENDPOINT}'\n"
        query = f"SELECT id, {name}(a, b) FROM {table} ORDER BY id"

        def answers() -> list[tuple[Any, ...]] | None:
            with alias_proxy.connect() as conn, conn.cursor() as cur:
                try:
                    cur.execute(query)
                except pymysql.MySQLError:
                    return None  # the proxy has not read the new name yet
                return list(cur.fetchall())

        assert wait_until(lambda: answers() is not None)
        expected = [(1, score(3, "xy")), (2, None), (3, score(5, "abcde"))]
        assert answers() == expected and expected[0][1] == Decimal("4.00")
    finally:
        drop_function(backend, name)
        with admin_connect(backend) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {TEST_DB}.{table}")


def test_schema_qualified_name_and_database_flag(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo
) -> None:
    first, second = unique("fn"), unique("fn")
    try:
        assert cli(capsys, backend, *create_args(f"`{TEST_DB}`.{first}"), database=None)[0] == 0
        code, _, _ = cli(
            capsys, backend, *create_args(second), "--database", TEST_DB, database=None
        )
        assert code == 0
        code, out, _ = cli(capsys, backend, "list", "--database", TEST_DB, "--json")
        assert {first, second} <= {fn["name"] for fn in json.loads(out)}
    finally:
        drop_function(backend, first)
        drop_function(backend, second)


def test_no_database_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo
) -> None:
    code, out, err = cli(capsys, backend, *create_args(unique("fn")), database=None)
    assert (code, out) == (2, "")
    assert "no database" in err and "--database" in err


# --- list and show ---------------------------------------------------------------------------


@pytest.fixture
def two_aliases(backend: BackendInfo, capsys: pytest.CaptureFixture[str]) -> Iterator[list[str]]:
    sagemaker, bedrock = unique("sm"), unique("br")
    assert cli(capsys, backend, *create_args(sagemaker))[0] == 0
    bedrock_args = ["create", bedrock, "--args", "body TEXT", "--returns", "TEXT"]
    bedrock_args += ["--model-id", "anthropic.claude-v2", "--timeout-ms", "1500"]
    assert cli(capsys, backend, *bedrock_args)[0] == 0
    yield [sagemaker, bedrock]
    for name in (sagemaker, bedrock):
        drop_function(backend, name)


def test_list_prints_an_aligned_table(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo, two_aliases: list[str]
) -> None:
    sagemaker, bedrock = two_aliases
    code, out, err = cli(capsys, backend, "list", "--database", TEST_DB)
    assert (code, err) == (0, "")
    header, *lines = out.splitlines()
    assert header.split() == ["schema", "name", "kind", "endpoint/model", "id", "returns", "args"]
    rows = {line.split()[1]: line for line in lines}
    assert rows[sagemaker].split(None, 5) == [
        TEST_DB, sagemaker, "sagemaker", ENDPOINT, "DECIMAL(8,2)", "a INT, b VARCHAR(10)"
    ]  # fmt: skip
    assert rows[bedrock].split() == [
        TEST_DB, bedrock, "bedrock", "anthropic.claude-v2", "TEXT", "body", "TEXT"
    ]  # fmt: skip
    for column in ("name", "kind", "endpoint/model id", "returns", "args"):
        start = header.index(column)  # every value starts under its column's title
        assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines)


def test_list_json_has_every_field(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo, two_aliases: list[str]
) -> None:
    code, out, _ = cli(capsys, backend, "list", "--json")
    found = {fn["name"]: fn for fn in json.loads(out)}
    sagemaker, bedrock = (found[name] for name in two_aliases)
    assert code == 0
    assert sagemaker["args"] == [{"name": "a", "type": "INT"}, {"name": "b", "type": "VARCHAR(10)"}]
    assert (sagemaker["kind"], sagemaker["endpoint"], sagemaker["max_batch_size"]) == (
        "sagemaker", ENDPOINT, 50
    )  # fmt: skip
    assert (bedrock["model_id"], bedrock["timeout_ms"], bedrock["security"]) == (
        "anthropic.claude-v2", 1500, "DEFINER"
    )  # fmt: skip
    assert bedrock["definer"] == "`app`@`%`" and bedrock["schema"] == TEST_DB


def test_show_prints_what_show_create_function_shows_through_the_proxy(
    capsys: pytest.CaptureFixture[str],
    backend: BackendInfo,
    alias_proxy: RunningProxy,
    two_aliases: list[str],
) -> None:
    for name in two_aliases:
        code, out, err = cli(capsys, backend, "show", name)
        assert (code, err) == (0, "") and out.endswith(";\n")
        with alias_proxy.connect() as conn, conn.cursor() as cur:
            cur.execute(f"SHOW CREATE FUNCTION {name}")
            (row,) = cur.fetchall()
        assert out == row[2] + ";\n"
        parsed = parse_ml_ddl(out)
        assert isinstance(parsed, AliasFunction) and parsed.name == name


# --- drop ------------------------------------------------------------------------------------


def test_drop_an_alias_then_if_exists(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo
) -> None:
    name = unique("fn")
    assert cli(capsys, backend, *create_args(name))[0] == 0
    assert cli(capsys, backend, "drop", name) == (0, f"dropped {TEST_DB}.{name}\n", "")
    code, out, err = cli(capsys, backend, "drop", name)
    assert (code, out) == (1, "")
    assert (
        err == f"mlproxy functions: ERROR 1305 (42000): FUNCTION {TEST_DB}.{name} does not exist\n"
    )
    assert cli(capsys, backend, "drop", name, "--if-exists") == (0, "", "")
    assert cli(capsys, backend, "show", name)[0] == 1


def test_drop_refuses_an_ordinary_stored_function(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo
) -> None:
    name = unique("plain")
    with admin_connect(backend, database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE FUNCTION {name}() RETURNS INT DETERMINISTIC RETURN 7")
    try:
        for action in ("drop", "show"):
            code, out, err = cli(capsys, backend, action, name)
            assert (code, out) == (1, "")
            assert f"{TEST_DB}.{name} is an ordinary stored function, not an mlproxy alias" in err
        with admin_connect(backend, database=TEST_DB) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {name}()")
            assert cur.fetchall() == ((7,),)
    finally:
        drop_function(backend, name)


# --- errors are the proxy's own --------------------------------------------------------------


def test_malformed_args_give_the_parsers_1064(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo, alias_proxy: RunningProxy
) -> None:
    name = unique("fn")
    argv = ["create", name, "--args", "a INT, b VARCHAR(10", "--returns", "INT"]
    code, out, err = cli(capsys, backend, *argv, "--endpoint", ENDPOINT)
    assert (code, out) == (2, "")
    ddl = (
        f"CREATE FUNCTION {name}(a INT, b VARCHAR(10) RETURNS INT "
        f"ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME '{ENDPOINT}'"
    )
    assert err.startswith("mlproxy functions: ERROR 1064 (42000): You have an error")
    assert err.split("ERROR ")[1].replace(" (42000)", "") == proxy_error(alias_proxy, ddl) + "\n"


def test_bad_option_values_are_the_parsers_errors(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo
) -> None:
    base = create_args(unique("fn"))[:-2]
    code, _, err = cli(capsys, backend, *base, "--max-batch-size", "0")
    assert code == 2 and "ERROR 1210 (42000): Incorrect arguments to MAX_BATCH_SIZE: 0" in err
    code, _, err = cli(capsys, backend, *base, "--content-type", "text/csv")
    assert code == 2 and "near 'CONTENT_TYPE 'text/csv''" in err
    code, _, err = cli(capsys, backend, *base[:-4], "--returns", "DATE", "--endpoint", "x")
    assert code == 2 and "ERROR 1235" in err and "DATE as the return type" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], backend: BackendInfo) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["functions", "create", "f", "--args", "a INT", "--returns", "INT"])
    assert exited.value.code == 2
    assert "one of the arguments --endpoint --model-id is required" in capsys.readouterr().err
    code, _, err = cli(capsys, backend, "show", "a b")
    assert code == 2 and "ERROR 1064" in err


def test_missing_privilege_gets_the_backends_error(
    capsys: pytest.CaptureFixture[str], backend: BackendInfo, alias_proxy: RunningProxy
) -> None:
    reader = Account(unique("ro"), "ro-pw")
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE USER '{reader.user}'@'%' IDENTIFIED BY '{reader.password}'")
        cur.execute(f"GRANT SELECT ON {TEST_DB}.* TO '{reader.user}'@'%'")
    name = unique("fn")
    try:
        code, out, err = cli(capsys, backend, *create_args(name), account=reader)
        assert (code, out) == (1, "")
        ddl = (
            f"CREATE FUNCTION {name}(a INT, b VARCHAR(10)) RETURNS DECIMAL(8,2) "
            f"ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME '{ENDPOINT}'"
        )
        expected = proxy_error(alias_proxy, ddl, reader)
        assert expected.startswith(("1044:", "1142:", "1370:")), expected
        assert err.replace(" (42000)", "") == f"mlproxy functions: ERROR {expected}\n"
    finally:
        with admin_connect(backend) as conn, conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{reader.user}'@'%'")


# --- the console script ----------------------------------------------------------------------


def run_script(*argv: str) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "proxy"]
    return subprocess.run(
        [*command, "functions", *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_console_script_lists_and_reports_login_errors(
    backend: BackendInfo, two_aliases: list[str]
) -> None:
    listed = run_script("list", "--database", TEST_DB, "--backend", url(backend))
    assert listed.returncode == 0, listed.stderr
    assert all(f" {name} " in listed.stdout for name in two_aliases)
    wrong = run_script("list", "--backend", url(backend, Account(APP.user, "wrong")))
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("mlproxy functions: ERROR 1045 (28000): Access denied")
    assert "Traceback" not in wrong.stderr and wrong.stdout == ""
