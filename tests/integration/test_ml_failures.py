"""Issue 12: failures a user can act on.

- A ``python:`` target is imported as ``python -m`` imports: from the working directory,
  or from ``--app-dir``, also under the ``mlproxy`` console script (whose sys.path does
  not hold the working directory).
- Every backend failure that reaches a client is logged at warning level, one line with
  the function, what it called and the cause.
- ``mlproxy explain`` answers the statements the SQL path refuses with the same error (the
  oracle: the same statement through the proxy), as one line and exit code 1.
- The request cap counts requests that cost money: the offline local model is not capped.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.conftest import TEST_DB, RunningProxy, admin_connect, start_proxy
from tests.support import switchable_backend
from tests.support.backend import BackendInfo

S = "aws_comprehend_detect_sentiment"
SCRIPT = Path(sys.executable).with_name("mlproxy")
#: A model module of the user's own, in a directory of the user's own.
MODEL = textwrap.dedent(
    """
    def sentiment(inputs):
        return [("MIXED", 0.25) for _ in inputs]
    """
)


def mlproxy(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The ``mlproxy`` command as a user runs it: the console script (or, without one,
    an isolated interpreter, whose sys.path holds no working directory either)."""
    if SCRIPT.exists():
        command = [str(SCRIPT)]
    else:
        main = "import sys; from proxy.cli.main import main; sys.exit(main(sys.argv[1:]))"
        command = [sys.executable, "-I", "-c", main]
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )


def url(backend: BackendInfo) -> str:
    return (
        f"mysql://{backend.admin_user}:{backend.admin_password}"
        f"@{backend.host}:{backend.port}/{TEST_DB}"
    )


@pytest.fixture(scope="module")
def words(backend: BackendInfo) -> str:
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS failure_words")
        cur.execute("CREATE TABLE failure_words (id INT PRIMARY KEY, txt VARCHAR(40))")
        cur.executemany(
            "INSERT INTO failure_words VALUES (%s, %s)", [(i, f"word {i}") for i in range(60)]
        )
        admin.commit()
    return "failure_words"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "users_model_12.py").write_text(MODEL)
    return directory


TARGET = "python:users_model_12:sentiment"


# -- python: targets are found where the user is ------------------------------------------


def test_a_python_target_is_imported_from_the_working_directory(
    backend: BackendInfo, words: str, app_dir: Path
) -> None:
    sql = f"SELECT {S}(txt, 'en') FROM {words}"
    result = mlproxy(
        "explain", "--backend", url(backend), "--comprehend-backend", TARGET, sql, cwd=app_dir
    )
    assert result.returncode == 0, result.stderr
    assert f"backend {TARGET!r}" in result.stdout


def test_elsewhere_app_dir_says_where_and_without_it_the_error_is_one_line(
    backend: BackendInfo, words: str, app_dir: Path, tmp_path: Path
) -> None:
    sql = f"SELECT {S}(txt, 'en') FROM {words}"
    argv = ("explain", "--backend", url(backend), "--comprehend-backend", TARGET, sql)
    found = mlproxy(*argv, "--app-dir", str(app_dir), cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    missing = mlproxy(*argv, cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    assert "No module named 'users_model_12'" in missing.stderr
    assert "app_dir" in missing.stderr


def test_serve_imports_the_target_from_app_dir(
    backend: BackendInfo, words: str, app_dir: Path, tmp_path: Path
) -> None:
    """The issue's case: the console script's sys.path has no working directory."""
    log_path = tmp_path / "serve.log"
    address = f"mysql://{backend.host}:{backend.port}"
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-I", "-m", "proxy"]
    settings = ["--listen", "127.0.0.1:0", "--backend", address, "--no-tls"]
    settings += ["--comprehend-backend", TARGET, "--app-dir", str(app_dir)]
    with log_path.open("w") as log:
        serve = subprocess.Popen(
            [*command, "serve", *settings],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        port = listening_port(log_path, serve)
        with (
            pymysql.connect(
                host="127.0.0.1",
                port=port,
                user=backend.admin_user,
                password=backend.admin_password,
                database=TEST_DB,
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(f"SELECT DISTINCT {S}(txt, 'en') FROM {words}")
            assert cur.fetchall() == (("MIXED",),)
    finally:
        serve.terminate()
        serve.wait(30)


def listening_port(log_path: Path, process: subprocess.Popen[Any]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on [0-9.]+:(\d+)", log_path.read_text())
        if found:
            return int(found.group(1))
        assert process.poll() is None, log_path.read_text()
        time.sleep(0.05)
    raise AssertionError(log_path.read_text())


# -- mlproxy explain answers what the SQL path answers -----------------------------------------


REFUSED = [
    f"SELECT {S}(txt) FROM failure_words",  # 1582: argument count
    f"SELECT {S}(txt, 'xx') FROM failure_words",  # 1210: unsupported language
    f"SELECT {S}(nocol, 'en') FROM failure_words",  # 1054: the backend's own
    f"SELECT {S}(txt, 'en') FROM no_such_table_12",  # 1146: the backend's own
    f"SELECT {S}(txt, 'en', 0) FROM failure_words",  # 1210: max_batch_size
]


@pytest.mark.parametrize("sql", REFUSED)
def test_explain_refuses_what_the_sql_path_refuses_with_the_same_error(
    backend: BackendInfo, words: str, proxy: RunningProxy, sql: str
) -> None:
    with (
        proxy.connect() as conn,
        conn.cursor() as cur,
        pytest.raises(pymysql.MySQLError) as caught,
    ):
        cur.execute(sql)
    code, message = caught.value.args
    result = mlproxy("explain", "--backend", url(backend), sql)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"mlproxy explain: ERROR {code} (")
    assert result.stderr.endswith(f"): {message}\n")
    assert result.stderr.count("\n") == 1


def test_explain_names_an_alias_target_that_cannot_be_built(
    backend: BackendInfo, words: str, tmp_path: Path
) -> None:
    name = "failure_alias_12"
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute(f"DROP FUNCTION IF EXISTS {name}")
    ddl = (
        f"CREATE FUNCTION {name} (t VARCHAR(40)) RETURNS VARCHAR(40) "
        "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'gone'"
    )
    route = "gone=python:no_such_module_12:predict"
    proxy = start_proxy(backend, endpoint=(route,))
    try:
        with proxy.connect() as conn, conn.cursor() as cur:
            cur.execute(ddl)
            with pytest.raises(pymysql.MySQLError) as caught:
                cur.execute(f"SELECT {name}(txt) FROM {words}")
            code, message = caught.value.args
    finally:
        proxy.stop()
    assert code == 1105 and "no_such_module_12" in message
    sql = f"SELECT {name}(txt) FROM {words}"
    result = mlproxy("explain", "--backend", url(backend), "--endpoint", route, sql, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        1,
        f"mlproxy explain: ERROR 1105 (HY000): {message}\n",
    )


# -- the log says what failed, calling what, and why ---------------------------------------


@pytest.fixture
def switchable_proxy(backend: BackendInfo, words: str) -> Iterator[RunningProxy]:
    switchable_backend.reset()
    proxy = start_proxy(backend, comprehend_backend=switchable_backend.SETTING, ml_max_attempts=1)
    yield proxy
    proxy.stop()
    switchable_backend.reset()


@pytest.mark.parametrize(
    ("mode", "cause"),
    [("fail", "RuntimeError: model crashed"), ("unavailable", "HTTP 503: service unavailable")],
)
def test_every_backend_failure_a_client_sees_is_logged_once_on_one_line(
    switchable_proxy: RunningProxy, caplog: pytest.LogCaptureFixture, mode: str, cause: str
) -> None:
    switchable_backend.mode = mode
    with (
        caplog.at_level(logging.WARNING, logger="mlproxy.proxy"),
        switchable_proxy.connect() as conn,
        conn.cursor() as cur,
        pytest.raises(pymysql.MySQLError) as caught,
    ):
        cur.execute(f"SELECT {S}(txt, 'en') FROM failure_words")
    assert cause in caught.value.args[1]
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].exc_info is None
    line = lines[0].getMessage()
    assert line.startswith(f"{S}() failed (backend {switchable_backend.SETTING}): ")
    assert cause in line and "\n" not in line


# -- the request cap counts what costs money -------------------------------------------------


def test_the_offline_local_model_is_not_capped(
    backend: BackendInfo, words: str, switchable_proxy: RunningProxy
) -> None:
    """The same cap refuses a metered backend (a python: callable may call anything)."""
    sql = f"SELECT {S}(txt, 'en') FROM {words}"  # 60 texts: 3 requests
    local = start_proxy(backend, ml_max_backend_calls=2)
    try:
        with local.connect() as conn, conn.cursor() as cur:
            cur.execute(sql)
            assert len(cur.fetchall()) == 60
            cur.execute("SET @mlproxy_max_backend_calls = 1")
            cur.execute(sql)
            assert len(cur.fetchall()) == 60
    finally:
        local.stop()
    with switchable_proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("SET @mlproxy_max_backend_calls = 2")
        with pytest.raises(pymysql.MySQLError) as caught:
            cur.execute(sql)
    assert caught.value.args[0] == 1226
    assert switchable_backend.batches == []
    explained = mlproxy("explain", "--backend", url(backend), "--ml-max-backend-calls", "2", sql)
    assert "3 request(s) for 60 distinct input(s)" in explained.stdout
    assert "would refuse" not in explained.stdout
