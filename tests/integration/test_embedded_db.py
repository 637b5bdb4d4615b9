"""Tests for proxy.embedded_db: one throwaway server per module, reached over TCP with PyMySQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pymysql
import pytest

from proxy.embedded_db import (
    EmbeddedServer,
    EmbeddedServerError,
    find_server_binary,
    run_sql,
    start_embedded_server,
)

ER_ACCESS_DENIED_ERROR = 1045


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    """One server shared by the module; starting one costs about a second."""
    started = start_embedded_server()
    yield started
    started.stop()


def connect(server: EmbeddedServer, **overrides: str) -> pymysql.connections.Connection:
    """A PyMySQL connection over TCP, as the admin unless ``user``/``password`` are given."""
    options = {"user": server.admin_user, "password": server.admin_password, **overrides}
    return pymysql.connect(host=server.host, port=server.port, connect_timeout=10, **options)


def test_find_server_binary_returns_an_executable() -> None:
    found = find_server_binary()
    assert found is not None
    assert os.access(found, os.X_OK)


def test_admin_can_query_over_tcp(server: EmbeddedServer) -> None:
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
    assert row is not None
    assert isinstance(row[0], str) and row[0]


def test_admin_can_create_insert_and_select(server: EmbeddedServer) -> None:
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS embedded_test")
        cur.execute("CREATE TABLE embedded_test.t (id INT PRIMARY KEY, name VARCHAR(20))")
        cur.execute("INSERT INTO embedded_test.t VALUES (1, 'one'), (2, 'two')")
        conn.commit()
        cur.execute("SELECT id, name FROM embedded_test.t ORDER BY id")
        assert cur.fetchall() == ((1, "one"), (2, "two"))


def test_unknown_user_is_rejected(server: EmbeddedServer) -> None:
    with pytest.raises(pymysql.err.OperationalError) as caught:
        connect(server, user="nobody_here", password="")
    assert caught.value.args[0] == ER_ACCESS_DENIED_ERROR


def test_no_anonymous_accounts_remain(server: EmbeddedServer) -> None:
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User = ''")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone() == (f"{server.admin_user}@%",)


def test_max_allowed_packet_is_applied(server: EmbeddedServer) -> None:
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@max_allowed_packet")
        assert cur.fetchone() == (256 * 1024 * 1024,)


def test_run_sql_runs_several_statements(server: EmbeddedServer) -> None:
    script = (
        "CREATE DATABASE IF NOT EXISTS run_sql_test; USE run_sql_test;\nSELECT 40 + 2 AS answer;"
    )
    assert run_sql(server, script).splitlines() == ["answer", "42"]


def test_run_sql_uses_the_given_database(server: EmbeddedServer) -> None:
    run_sql(server, "CREATE DATABASE IF NOT EXISTS run_sql_db")
    assert (
        run_sql(server, "SELECT DATABASE()", database="run_sql_db").splitlines()[1] == "run_sql_db"
    )


def test_run_sql_reports_client_errors(server: EmbeddedServer) -> None:
    with pytest.raises(EmbeddedServerError, match="no_such_table"):
        run_sql(server, "SELECT * FROM mysql.no_such_table")


def test_url_encodes_credentials(server: EmbeddedServer) -> None:
    url = server.url(user="a@b", password="p:w/%", database="db")
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == (
        "mysql",
        "127.0.0.1",
        server.port,
        "/db",
    )
    assert (unquote(parts.username or ""), unquote(parts.password or "")) == ("a@b", "p:w/%")
    assert server.url() == (
        f"mysql://{server.admin_user}:{server.admin_password}@127.0.0.1:{server.port}"
    )


def test_killed_server_restarts_on_its_workdir(tmp_path: Path) -> None:
    first = start_embedded_server(workdir=tmp_path / "db")
    with connect(first) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE survives")
    first.kill()
    assert first.process.poll() is not None
    second = start_embedded_server(workdir=tmp_path / "db", port=first.port)
    try:
        with connect(second) as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE 'survives'")
            assert cur.fetchone() == ("survives",)
    finally:
        second.stop()
    assert (tmp_path / "db" / "data").is_dir(), "a caller-supplied workdir is left in place"


def test_stop_ends_the_process_and_removes_the_directory() -> None:
    own = start_embedded_server()
    assert own.workdir.is_dir()
    own.stop()
    assert own.process.poll() is not None
    assert not own.workdir.exists()
    own.stop()  # idempotent
