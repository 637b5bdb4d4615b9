"""The backend a benchmark run talks to, its account and its tables.

Without ``--backend`` a throwaway MariaDB is started (proxy.embedded_db); with it, an
existing server is used through its admin URL. Either way the run gets its own database
and account, and two tables: ``sbtest1`` (sysbench's point-select schema) and
``stream_rows`` (the big SELECT), generated server-side by MariaDB's Sequence engine, or
a recursive CTE where that engine is missing (MySQL).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql

from proxy.embedded_db import start_embedded_server

log = logging.getLogger(__name__)

DATABASE = "mlproxy_bench"
USER = "bench"
PASSWORD = "bench-pw"
POINT_TABLE = "sbtest1"
STREAM_TABLE = "stream_rows"
# The embedded server's 64 MB buffer pool is smaller than the big table.
EMBEDDED_BUFFER_POOL = 512 << 20

_POINT_DDL = (
    "CREATE TABLE {table} (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0,"
    " c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))"
)
_POINT_COLUMNS = "id, k, c, pad", "seq, seq, LEFT(SHA2(seq, 512), 119), LEFT(SHA2(seq, 256), 59)"
STREAM_DDL = (
    "CREATE TABLE {table} (id INT NOT NULL PRIMARY KEY, a BIGINT NOT NULL,"
    " s VARCHAR(32) NOT NULL, d DECIMAL(20, 4) NOT NULL, ts DATETIME NOT NULL)"
)
STREAM_COLUMNS = "id, a, s, d, ts", "seq, seq * 2, CONCAT('row-', seq), seq / 3, NOW()"


@dataclass(frozen=True)
class Endpoint:
    """Where a client connects, and as whom."""

    host: str
    port: int
    user: str
    password: str
    database: str | None = None

    def at(self, host: str, port: int) -> Endpoint:
        """The same login, through another address (the proxy or the relay)."""
        return Endpoint(host, port, self.user, self.password, self.database)


def _endpoint_from_url(url: str) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
        raise ValueError(f"--backend must look like mysql://user:password@host:port, got {url!r}")
    return Endpoint(
        parts.hostname,
        parts.port or 3306,
        unquote(parts.username or "root"),
        unquote(parts.password or ""),
    )


def open_backend(url: str | None) -> tuple[Endpoint, Callable[[], None], bool]:
    """The admin endpoint, the callable that stops the backend, and whether we started it."""
    if url:
        return _endpoint_from_url(url), lambda: None, False
    server = start_embedded_server()
    admin = Endpoint(server.host, server.port, server.admin_user, server.admin_password)
    return admin, server.stop, True


def connect(endpoint: Endpoint, **kwargs: Any) -> pymysql.Connection[Any]:
    """A PyMySQL connection with autocommit on, without TLS (like sysbench and the CLI:
    PyMySQL would otherwise use TLS with the proxy, which offers it, and not directly)."""
    return pymysql.connect(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        password=endpoint.password,
        database=endpoint.database,
        autocommit=True,
        ssl_disabled=True,
        **kwargs,
    )


def _has_sequence_engine(cur: Any) -> bool:
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.ENGINES"
        " WHERE ENGINE = 'SEQUENCE' AND SUPPORT IN ('YES', 'DEFAULT')"
    )
    return bool(cur.fetchone()[0])


def fill(cur: Any, table: str, columns: tuple[str, str], rows: int) -> None:
    """INSERT ``rows`` generated rows, numbered 1..rows as ``seq``."""
    names, exprs = columns
    if _has_sequence_engine(cur):
        cur.execute(f"INSERT INTO {table} ({names}) SELECT {exprs} FROM seq_1_to_{rows}")
        return
    for variable in ("cte_max_recursion_depth", "max_recursive_iterations"):
        with contextlib.suppress(pymysql.MySQLError):
            cur.execute(f"SET SESSION {variable} = {rows + 1}")
    cur.execute(
        f"INSERT INTO {table} ({names}) WITH RECURSIVE nums (seq) AS"
        f" (SELECT 1 UNION ALL SELECT seq + 1 FROM nums WHERE seq < {rows})"
        f" SELECT {exprs} FROM nums"
    )


def _ensure_table(cur: Any, table: str, ddl: str, columns: tuple[str, str], rows: int) -> None:
    """Create and fill ``table`` unless it already holds exactly ``rows`` rows."""
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
        " AND TABLE_NAME = %s",
        (DATABASE, table),
    )
    if cur.fetchone()[0]:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        if cur.fetchone()[0] == rows:
            log.info("reusing %s (%d rows)", table, rows)
            return
        cur.execute(f"DROP TABLE {table}")
    log.info("creating %s with %d rows", table, rows)
    cur.execute(ddl.format(table=table))
    fill(cur, table, columns, rows)


def _create_account(cur: Any) -> None:
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
    cur.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
    cur.execute(f"ALTER USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
    cur.execute(f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%'")


def prepare(admin: Endpoint, stream_rows: int, point_rows: int, embedded: bool) -> Endpoint:
    """Create the database, account and tables; return the benchmark's login."""
    with connect(admin) as conn, conn.cursor() as cur:
        if embedded:
            cur.execute(f"SET GLOBAL innodb_buffer_pool_size = {EMBEDDED_BUFFER_POOL}")
        _create_account(cur)
        cur.execute(f"USE {DATABASE}")
        _ensure_table(cur, POINT_TABLE, _POINT_DDL, _POINT_COLUMNS, point_rows)
        _ensure_table(cur, STREAM_TABLE, STREAM_DDL, STREAM_COLUMNS, stream_rows)
    return Endpoint(admin.host, admin.port, USER, PASSWORD, DATABASE)


def server_version(endpoint: Endpoint) -> str:
    with connect(endpoint) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        return str(cur.fetchone()[0])
