"""The ``mariadb`` (or ``mysql``) command-line client through the proxy.

Each check runs the real client as a subprocess, through the proxy and directly against the
backend, and compares what the user sees: batch and table output, errors, scripts on stdin
and ``source`` files with DELIMITER, LOAD DATA LOCAL INFILE, TLS by default and without
it, ``USE`` in an interactive session (COM_INIT_DB, then COM_FIELD_LIST for tab
completion), and Ctrl-C, which makes the client open a second connection and send
``KILL QUERY <connection id>`` with the id from the proxy's greeting. Interactive sessions
run on a pseudo-terminal that ``setsid --ctty`` makes the client's controlling terminal, so
a written ^C is a real SIGINT from the terminal.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APP, TEST_DB, Account, RunningProxy, admin_connect, start_proxy
from tests.support import slow_models, switchable_backend
from tests.support.backend import BackendInfo

CLIENT = shutil.which("mariadb") or shutil.which("mysql")
SETSID = shutil.which("setsid")
RUN_TIMEOUT = 60
PROMPT = "mlcli[\\d]> "
PROMPT_PATTERN = re.compile(rb"mlcli\[[^\]]*\]> ")
OTHER_DB = "mlproxy_cli_other"
OTHER_TABLES = ("cli_alpha", "cli_beta")

pytestmark = pytest.mark.skipif(CLIENT is None, reason="no mariadb/mysql command-line client")


def client_args(
    port: int, *args: str, account: Account = APP, password: str | None = None
) -> list[str]:
    assert CLIENT is not None
    return [
        CLIENT,
        "--no-defaults",
        "--protocol=tcp",
        "-h",
        "127.0.0.1",
        "-P",
        str(port),
        "-u",
        account.user,
        f"--password={account.password if password is None else password}",
        "--default-character-set=utf8mb4",
        *args,
    ]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no user option files, no history file."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "MYSQL_HISTFILE": "/dev/null",
    }


def run_cli(
    env: dict[str, str], port: int, *args: str, stdin: str | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        client_args(port, *args, **kwargs),
        input=stdin,
        capture_output=True,
        text=True,
        errors="surrogateescape",  # binary values are printed as they are
        env=env,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def status_field(output: str, name: str) -> str:
    """A line of the client's ``status`` output, e.g. ``SSL:`` or ``Connection id:``."""
    match = re.search(rf"^{re.escape(name)}\s+(.*)$", output, re.MULTILINE)
    assert match is not None, f"no {name!r} in the status output:\n{output}"
    return match.group(1).strip()


# -- batch mode -----------------------------------------------------------------------------

TYPES_QUERY = (
    "SELECT 1 AS one, -2.50 AS dec_value, 'O''Brien' AS quote, 'tab\there' AS tab,"
    " 'new\\nline' AS newline, 'back\\\\slash' AS backslash, NULL AS nothing,"
    " '😀 ünï' AS unicode, x'00ff41' AS bytes, CAST('2024-02-29 23:59:58.123456'"
    " AS DATETIME(6)) AS at, -1.5e300 AS dbl, 18446744073709551615 AS big"
)


@pytest.mark.parametrize(
    "mode",
    [("--batch", "--raw"), ("--batch",), ("--table",), ("--vertical",), ("--xml",)],
    ids=lambda mode: "+".join(option.lstrip("-") for option in mode),
)
def test_query_output_matches_direct(
    cli_env: dict[str, str], proxy: RunningProxy, backend: BackendInfo, mode: tuple[str, ...]
) -> None:
    args = (*mode, TEST_DB, "-e", TYPES_QUERY)
    through = run_cli(cli_env, proxy.port, *args)
    direct = run_cli(cli_env, backend.port, *args)
    assert (through.returncode, through.stderr) == (0, "")
    assert through.stdout == direct.stdout
    assert "O'Brien" in through.stdout and "😀 ünï" in through.stdout
    assert "18446744073709551615" in through.stdout


def test_batch_raw_output_is_tab_separated_values(
    cli_env: dict[str, str], proxy: RunningProxy
) -> None:
    sql = "SELECT 'a' AS x, 2 AS y UNION ALL SELECT 'b\tc', NULL"
    through = run_cli(cli_env, proxy.port, "--batch", "--raw", TEST_DB, "-e", sql)
    assert through.stdout == "x\ty\na\t2\nb\tc\tNULL\n"


def test_tls_is_used_by_default(cli_env: dict[str, str], proxy: RunningProxy) -> None:
    through = run_cli(cli_env, proxy.port, TEST_DB, "-e", "status")
    assert through.returncode == 0, through.stderr
    assert re.fullmatch(r"Cipher in use is \S+", status_field(through.stdout, "SSL:"))
    assert int(status_field(through.stdout, "Connection id:")) >= 1 << 30  # the proxy's
    assert status_field(through.stdout, "Current user:").startswith("app@")


def test_skip_ssl_logs_in_with_the_rsa_key_exchange(
    cli_env: dict[str, str], proxy: RunningProxy
) -> None:
    through = run_cli(
        cli_env, proxy.port, "--skip-ssl", TEST_DB, "-e", "status; SELECT CURRENT_USER()"
    )
    assert through.returncode == 0, through.stderr
    assert status_field(through.stdout, "SSL:") == "Not in use"
    assert through.stdout.rstrip().endswith("app@%")


@pytest.mark.parametrize("tls", [(), ("--skip-ssl",)], ids=["tls", "no-tls"])
def test_wrong_password_is_refused_like_direct(
    cli_env: dict[str, str], proxy: RunningProxy, backend: BackendInfo, tls: tuple[str, ...]
) -> None:
    args = (*tls, TEST_DB, "-e", "SELECT 1")
    through = run_cli(cli_env, proxy.port, *args, password="not-the-password")
    direct = run_cli(cli_env, backend.port, *args, password="not-the-password")
    assert through.returncode == direct.returncode == 1
    assert through.stdout == ""
    assert through.stderr == direct.stderr
    assert through.stderr.startswith("ERROR 1045 (28000): Access denied for user 'app'@")


@pytest.fixture(scope="module")
def other_db(backend: BackendInfo) -> Iterator[str]:
    """A second database with two tables that APP may use."""
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {OTHER_DB}")
        for table in OTHER_TABLES:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {OTHER_DB}.{table} (id INT, label TEXT)")
        cur.execute(f"GRANT ALL ON {OTHER_DB}.* TO '{APP.user}'@'%'")
    try:
        yield OTHER_DB
    finally:
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {OTHER_DB}")
            cur.execute(f"REVOKE ALL ON {OTHER_DB}.* FROM '{APP.user}'@'%'")


def test_use_in_batch_mode_changes_the_database(
    cli_env: dict[str, str], proxy: RunningProxy, backend: BackendInfo, other_db: str
) -> None:
    script = (
        f"USE {other_db};\nSELECT DATABASE();\n"
        "SHOW SESSION STATUS LIKE 'Com_change_db';\nSHOW TABLES;\n"
    )
    through = run_cli(cli_env, proxy.port, "--batch", TEST_DB, stdin=script)
    direct = run_cli(cli_env, backend.port, "--batch", TEST_DB, stdin=script)
    assert (through.returncode, through.stderr) == (0, "")
    assert through.stdout == direct.stdout
    assert through.stdout.split("\n")[:4] == [
        "DATABASE()",
        other_db,
        "Variable_name\tValue",
        "Com_change_db\t1",
    ]


MULTI_STATEMENT_SCRIPT = """\
-- a script fed on stdin
CREATE TABLE cli_script (id INT PRIMARY KEY, name VARCHAR(20));
INSERT INTO cli_script VALUES (1, 'one'), (2, 'two; not a separator');
INSERT INTO cli_script
  VALUES (3, 'three');  /* a comment */ SELECT COUNT(*) AS n FROM cli_script;
DELIMITER //
SELECT name FROM cli_script WHERE id = 2; SELECT SUM(id) AS total FROM cli_script //
DELIMITER ;
UPDATE cli_script SET name = 'TWO' WHERE id = 2;
SELECT ROW_COUNT() AS changed, name FROM cli_script WHERE id = 2;
DROP TABLE cli_script;
"""


def test_multi_statement_script_on_stdin(
    cli_env: dict[str, str], proxy: RunningProxy, backend: BackendInfo
) -> None:
    through = run_cli(cli_env, proxy.port, "--batch", TEST_DB, stdin=MULTI_STATEMENT_SCRIPT)
    direct = run_cli(cli_env, backend.port, "--batch", TEST_DB, stdin=MULTI_STATEMENT_SCRIPT)
    assert (through.returncode, through.stderr) == (0, "")
    assert through.stdout == direct.stdout
    # The DELIMITER // line went to the server as one COM_QUERY with two statements.
    assert through.stdout == ("n\n3\nname\ntwo; not a separator\ntotal\n6\nchanged\tname\n1\tTWO\n")


SOURCED_FILE = """\
DROP PROCEDURE IF EXISTS cli_proc;
DELIMITER //
CREATE PROCEDURE cli_proc(IN n INT)
BEGIN
  -- two result sets, then the CALL's own OK
  SELECT n AS n, n * n AS square;
  SELECT CONCAT('done; ', n) AS message;
END //
DELIMITER ;
CALL cli_proc(7);
CALL cli_proc(-3);
DROP PROCEDURE cli_proc;
SELECT 'after the procedure' AS tail;
"""


def test_source_file_with_delimiter_procedure_and_call(
    cli_env: dict[str, str], proxy: RunningProxy, backend: BackendInfo, tmp_path: Path
) -> None:
    script = tmp_path / "procedure.sql"
    script.write_text(SOURCED_FILE)
    args = ("--batch", TEST_DB, "-e", f"source {script}")
    through = run_cli(cli_env, proxy.port, *args)
    direct = run_cli(cli_env, backend.port, *args)
    assert (through.returncode, through.stderr) == (0, "")
    assert through.stdout == direct.stdout
    assert through.stdout == (
        "n\tsquare\n7\t49\nmessage\ndone; 7\n"
        "n\tsquare\n-3\t9\nmessage\ndone; -3\n"
        "tail\nafter the procedure\n"
    )


def test_load_data_local_infile_sends_the_clients_file(
    cli_env: dict[str, str], proxy: RunningProxy, backend: BackendInfo, tmp_path: Path
) -> None:
    data = tmp_path / "rows.csv"
    data.write_text('1,one\n2,"two, quoted"\n3,\\N\n4,"O\'Brien 😀"\n')
    script = (
        "CREATE TABLE cli_infile (id INT PRIMARY KEY, name TEXT);\n"
        f"LOAD DATA LOCAL INFILE '{data}' INTO TABLE cli_infile"
        " FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"';\n"
        "SELECT * FROM cli_infile ORDER BY id;\n"
        "DROP TABLE cli_infile;\n"
    )
    args = ("--batch", "--local-infile=1", TEST_DB)
    through = run_cli(cli_env, proxy.port, *args, stdin=script)
    direct = run_cli(cli_env, backend.port, *args, stdin=script)
    assert (through.returncode, through.stderr) == (0, "")
    assert through.stdout == direct.stdout
    assert through.stdout == "id\tname\n1\tone\n2\ttwo, quoted\n3\tNULL\n4\tO'Brien 😀\n"


# -- Ctrl-C ---------------------------------------------------------------------------------


def sleeping_queries(backend: BackendInfo, marker: str) -> int:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
            (f"SELECT SLEEP(%) AS {marker}",),
        )
        (count,) = cur.fetchone()
        return int(count)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def interrupt_batch_sleep(
    env: dict[str, str], port: int, backend: BackendInfo, marker: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run SELECT SLEEP(30) in batch mode, SIGINT the client once the query runs."""
    process = subprocess.Popen(
        client_args(port, TEST_DB, "-e", f"SELECT SLEEP(30) AS {marker}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for(lambda: sleeping_queries(backend, marker) == 1, 15, "the query to start")
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), elapsed


def test_ctrl_c_kills_the_running_query(
    cli_env: dict[str, str], proxy: RunningProxy, backend: BackendInfo
) -> None:
    through, elapsed = interrupt_batch_sleep(cli_env, proxy.port, backend, "cli_ctrl_c_proxy")
    assert elapsed < 10, "the client waited for the query instead of killing it"
    wait_for(lambda: sleeping_queries(backend, "cli_ctrl_c_proxy") == 0, 5, "the query to end")
    direct, _ = interrupt_batch_sleep(cli_env, backend.port, backend, "cli_ctrl_c_direct")
    assert through.stdout == direct.stdout
    assert through.stderr == direct.stderr.replace("cli_ctrl_c_direct", "cli_ctrl_c_proxy")
    assert through.returncode == direct.returncode == 1
    assert "Ctrl-C -- query killed." in through.stdout
    assert "ERROR 1317 (70100)" in through.stderr


# -- interactive sessions on a pseudo-terminal ----------------------------------------------


class Terminal:
    """The client in interactive mode on a pty that is its controlling terminal."""

    def __init__(self, env: dict[str, str], args: Sequence[str]) -> None:
        assert SETSID is not None
        self.master, slave = pty.openpty()
        self.buffer = b""
        try:
            self.process = subprocess.Popen(
                [SETSID, "--ctty", *args],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                close_fds=True,
            )
        finally:
            os.close(slave)

    def read_until(self, pattern: re.Pattern[bytes], timeout: float = RUN_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while (match := pattern.search(self.buffer)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {pattern.pattern!r} in {timeout} s; got {self.buffer!r}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 1 << 16)
                except OSError:  # EIO: the client is gone
                    chunk = b""
                if not chunk:
                    pytest.fail(f"the client exited; got {self.buffer!r}")
                self.buffer += chunk
        text = self.buffer[: match.start()]
        self.buffer = self.buffer[match.end() :]
        return text.decode("utf-8", "replace").replace("\r\n", "\n")

    def run(self, line: str) -> str:
        """Type a line; return what the client printed before its next prompt."""
        os.write(self.master, line.encode() + b"\n")
        return self.read_until(PROMPT_PATTERN)

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, b"quit\n")
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        os.close(self.master)


@contextlib.contextmanager
def terminal(env: dict[str, str], port: int, *args: str) -> Iterator[Terminal]:
    session = Terminal(env, client_args(port, f"--prompt={PROMPT}", *args))
    try:
        session.read_until(PROMPT_PATTERN)
        yield session
    finally:
        session.close()


def session_counter(output: str, name: str) -> int:
    match = re.search(rf"\|\s*{name}\s*\|\s*(\d+)\s*\|", output)
    assert match is not None, f"no {name} in:\n{output}"
    return int(match.group(1))


def use_with_completion(env: dict[str, str], port: int, other: str) -> dict[str, Any]:
    with terminal(env, port, TEST_DB) as cli:
        changed = cli.run(f"USE {other};")
        database = cli.run("SELECT CONCAT('db=', DATABASE()) AS d;")
        status = cli.run(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Com_change_db', 'Com_show_fields');"
        )
    return {
        "reading": "Reading table information for completion" in changed,
        "changed": "Database changed" in changed,
        "database": re.findall(r"db=(\w+)", database)[-1],
        "change_db": session_counter(status, "Com_change_db"),
        "field_lists": session_counter(status, "Com_show_fields"),
    }


@pytest.mark.skipif(SETSID is None, reason="needs util-linux setsid for a controlling terminal")
def test_interactive_use_reads_table_columns_for_completion(
    cli_env: dict[str, str], proxy: RunningProxy, backend: BackendInfo, other_db: str
) -> None:
    through = use_with_completion(cli_env, proxy.port, other_db)
    direct = use_with_completion(cli_env, backend.port, other_db)
    assert through == direct
    assert through == {
        "reading": True,
        "changed": True,
        "database": other_db,
        "change_db": 1,  # COM_INIT_DB
        "field_lists": len(OTHER_TABLES),  # one COM_FIELD_LIST per table
    }


@pytest.mark.skipif(SETSID is None, reason="needs util-linux setsid for a controlling terminal")
def test_interactive_ctrl_c_kills_the_query_and_the_session_goes_on(
    cli_env: dict[str, str], proxy: RunningProxy, backend: BackendInfo
) -> None:
    marker = "cli_interactive_ctrl_c"
    with terminal(cli_env, proxy.port, TEST_DB) as cli:
        before = cli.run("SELECT CONCAT('id=', CONNECTION_ID()) AS i;")
        cli.type(f"SELECT SLEEP(30) AS {marker};\n".encode())
        wait_for(lambda: sleeping_queries(backend, marker) == 1, 15, "the query to start")
        started = time.monotonic()
        cli.type(b"\x03")  # ^C on the terminal: SIGINT to the client
        interrupted = cli.read_until(PROMPT_PATTERN, timeout=20)
        elapsed = time.monotonic() - started
        after = cli.run("SELECT CONCAT('id=', CONNECTION_ID()) AS i;")
    assert elapsed < 10, "the client waited for the query instead of killing it"
    assert "Ctrl-C -- query killed." in interrupted
    assert "ERROR 1317 (70100)" in interrupted
    wait_for(lambda: sleeping_queries(backend, marker) == 0, 5, "the query to end")
    # The same backend session before and after: only the query was killed.
    assert re.findall(r"id=(\d+)", before)[-1] == re.findall(r"id=(\d+)", after)[-1]


# -- an ML statement on a pseudo-terminal: Ctrl-C and progress reports --------------------

ML_TEXTS = "cli_ml_texts"
ML_ROWS = 500  # 20 batches of 25 distinct texts
ML_STATEMENT = (
    f"SELECT aws_comprehend_detect_sentiment(txt, 'en') AS s, COUNT(*) AS n FROM {ML_TEXTS}"
    " GROUP BY s ORDER BY s"
)


@pytest.fixture(scope="module")
def slow_ml_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    """A proxy whose model takes slow_models.SECONDS_PER_BATCH per batch, one at a time."""
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {ML_TEXTS}")
        cur.execute(f"CREATE TABLE {ML_TEXTS} (id INT PRIMARY KEY, txt VARCHAR(100))")
        cur.executemany(
            f"INSERT INTO {ML_TEXTS} VALUES (%s, %s)",
            [(i, f"cli text {i}") for i in range(ML_ROWS)],
        )
    proxy = start_proxy(
        backend,
        comprehend_backend="python:tests.support.slow_models:sentiment_async",
        ml_max_in_flight=1,
        ml_cache_entries=0,
    )
    yield proxy
    proxy.stop()
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {ML_TEXTS}")


def ml_counts() -> dict[str, int]:
    """The oracle: the statement's groups, from the model's own answers."""
    counts: dict[str, int] = {}
    for i in range(ML_ROWS):
        label = switchable_backend.answer(f"cli text {i}")[0]
        counts[label] = counts.get(label, 0) + 1
    return counts


def printed_counts(output: str) -> dict[str, int]:
    return {label: int(n) for label, n in re.findall(r"\|\s*([A-Z]+)\s*\|\s*(\d+)\s*\|", output)}


@pytest.mark.skipif(SETSID is None, reason="needs util-linux setsid for a controlling terminal")
def test_interactive_ctrl_c_stops_an_ml_statement_and_the_session_goes_on(
    cli_env: dict[str, str], slow_ml_proxy: RunningProxy
) -> None:
    """^C while the model answers (20 batches, 0.3 s each): the client's KILL QUERY ends
    the statement at once (1317), no model request starts after, the next ML statement
    runs on the same backend session."""
    slow_models.reset(0.3)
    with terminal(cli_env, slow_ml_proxy.port, TEST_DB) as cli:
        before = cli.run("SELECT CONCAT('id=', CONNECTION_ID()) AS i;")
        cli.type(f"{ML_STATEMENT};\n".encode())
        wait_for(lambda: slow_models.started() >= 2, 15, "the model to answer")
        pressed = time.monotonic()
        cli.type(b"\x03")
        interrupted = cli.read_until(PROMPT_PATTERN, timeout=20)
        elapsed = time.monotonic() - pressed
        requests = slow_models.started()
        time.sleep(1)  # three batches' time: any request still to start would have
        requests_after = slow_models.started() - requests
        slow_models.reset(0)
        after = cli.run(f"{ML_STATEMENT};")
        same = cli.run("SELECT CONCAT('id=', CONNECTION_ID()) AS i;")
    print(f"Ctrl-C -> prompt in {elapsed * 1000:.0f} ms, {requests_after} requests after")
    assert "Ctrl-C -- query killed." in interrupted
    assert "ERROR 1317 (70100)" in interrupted
    assert elapsed < 1.0, f"{elapsed:.2f} s from ^C to the prompt"
    assert requests < ML_ROWS // 25 and requests_after == 0
    assert printed_counts(after) == ml_counts()
    assert re.findall(r"id=(\d+)", before)[-1] == re.findall(r"id=(\d+)", same)[-1]


@pytest.mark.skipif(SETSID is None, reason="needs util-linux setsid for a controlling terminal")
def test_interactive_client_prints_progress_reports_during_inference(
    cli_env: dict[str, str], slow_ml_proxy: RunningProxy, backend: BackendInfo
) -> None:
    """The mariadb client's --progress-reports (on by default when interactive), as for
    ALTER TABLE: "Stage: 1 of 1 'Batched machine learning' ... of stage done"."""
    with admin_connect(backend) as admin:
        if "mariadb" not in admin.get_server_info().lower():
            pytest.skip("progress reports are MariaDB's")
    slow_models.reset(0.2)  # 4 s
    with terminal(cli_env, slow_ml_proxy.port, "--progress-reports", TEST_DB) as cli:
        cli.run("SET SESSION progress_report_time = 1;")
        output = cli.run(f"{ML_STATEMENT};")
    stages = re.findall(
        r"Stage: 1 of 1 'Batched machine learning'\s+([\d.]+)% of stage done", output
    )
    print("progress reports seen by the CLI:", stages)
    assert len(stages) >= 2, output
    percents = [float(p) for p in stages]
    assert percents == sorted(percents) and 0 < percents[-1] < 100
    assert printed_counts(output) == ml_counts()
