"""Prepared-statement scripts for mysql-connector-python, run in-process or in a child process.

tests/integration/test_prepared.py runs the same scripts with both of mysql-connector's
implementations.
The pure-Python one runs in the test process. The C extension cannot: its wheel bundles
OpenSSL 3.2+ (``mysql/vendor/libssl.so.3``), but once Python's ``ssl`` module has loaded the
system's libssl.so.3 (PyMySQL and the proxy import it long before any test runs), the dynamic
loader reuses that library for the same soname and ``import _mysql_connector`` fails with
"version `OPENSSL_3.2.0' not found", so ``mysql.connector.HAVE_CEXT`` is False. A child that
imports ``_mysql_connector`` before anything else loads the bundled library first and works.
``python -c "import _mysql_connector; from tests.support.prepared_worker import serve; serve()"``
starts such a child: it reads pickled requests on stdin and writes pickled answers on stdout.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import mysql.connector

#: Connection settings shared by every script (the account is the suite's APP account).
USER = "app"
PASSWORD = "app-pw"
DATABASE = "mlproxy_test"
TIMEOUT = 60


@dataclass(frozen=True)
class Target:
    """Where to connect: the proxy or the backend."""

    host: str
    port: int


@dataclass(frozen=True)
class Step:
    """One statement: through a prepared cursor (COM_STMT_*) unless ``prepared`` is False.

    ``many`` runs ``executemany`` with those parameter sets instead of ``execute``. All
    prepared steps of a script share one cursor, so a step whose ``sql`` is the very same
    string object as the previous step's re-executes the statement without preparing it
    again (mysql-connector compares the operation by identity).
    """

    sql: str
    params: Sequence[Any] = ()
    many: Sequence[Sequence[Any]] | None = None
    prepared: bool = True


@dataclass(frozen=True)
class Result:
    """What a statement returned: column metadata, rows (bytearray made bytes), rowcount."""

    description: list[tuple[Any, ...]] | None
    rows: list[tuple[Any, ...]]
    rowcount: int


@dataclass(frozen=True)
class Failure:
    """A statement the server (or the client library) refused."""

    errno: int
    sqlstate: str | None
    msg: str = field(compare=False)


Outcome = Result | Failure


def connect(target: Target, *, use_pure: bool) -> Any:
    """A mysql-connector connection of the requested implementation, autocommit on."""
    return mysql.connector.connect(
        host=target.host,
        port=target.port,
        user=USER,
        password=PASSWORD,
        database=DATABASE,
        use_pure=use_pure,
        autocommit=True,
        connection_timeout=TIMEOUT,
        read_timeout=TIMEOUT,
        write_timeout=TIMEOUT,
    )


def _plain(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(bytes(value) if isinstance(value, bytearray) else value for value in row)


def _run_step(cursor: Any, step: Step) -> Outcome:
    try:
        if step.many is not None:
            cursor.executemany(step.sql, step.many)
        else:
            cursor.execute(step.sql, tuple(step.params) or None)
        rows = [_plain(row) for row in cursor.fetchall()] if cursor.with_rows else []
        description = [tuple(column) for column in cursor.description or []] or None
        return Result(description, rows, cursor.rowcount)
    except mysql.connector.Error as exc:
        return Failure(exc.errno, exc.sqlstate, str(exc))


def run_script(
    target: Target, use_pure: bool, steps: Sequence[Step], cleanup: Sequence[str] = ()
) -> list[Outcome]:
    """Run the steps on one connection; ``cleanup`` statements run at the end in any case."""
    cnx = connect(target, use_pure=use_pure)
    try:
        prepared = cnx.cursor(prepared=True)
        plain = cnx.cursor()
        try:
            return [_run_step(prepared if step.prepared else plain, step) for step in steps]
        finally:
            for sql in cleanup:
                plain.execute(sql)
            prepared.close()
            plain.close()
    finally:
        cnx.close()


def _stmt_counters(cnx: Any) -> dict[str, int]:
    cursor = cnx.cursor()
    cursor.execute("SHOW SESSION STATUS LIKE 'Com\\_stmt\\_%'")
    counters = {str(name): int(value) for name, value in cursor.fetchall()}
    cursor.close()
    return counters


def open_and_close(target: Target, use_pure: bool, count: int) -> dict[str, int]:
    """Prepare ``count`` statements on separate cursors, close them all; return how the
    session's Com_stmt_* counters moved."""
    cnx = connect(target, use_pure=use_pure)
    try:
        before = _stmt_counters(cnx)
        cursors = []
        for n in range(count):
            cursor = cnx.cursor(prepared=True)
            cursor.execute("SELECT ? + " + str(n), (n,))
            assert cursor.fetchall() == [(2 * n,)], "wrong answer from a prepared SELECT"
            cursors.append(cursor)
        for cursor in cursors:
            cursor.close()
        after = _stmt_counters(cnx)
        return {name: after[name] - before[name] for name in after}
    finally:
        cnx.close()


SCRIPTS: dict[str, Callable[..., Any]] = {
    "run_script": run_script,
    "open_and_close": open_and_close,
}


def run(name: str, target: Target, use_pure: bool, *args: Any) -> Any:
    return SCRIPTS[name](target, use_pure, *args)


def _answer(out: BinaryIO, message: tuple[Any, ...]) -> None:
    pickle.dump(message, out)
    out.flush()


def serve() -> None:
    """The child's loop: ("run", name, target, args) in, ("ok", value)/("raised", text) out."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Nothing else may write to the answer channel.
    sys.stdout = sys.stderr
    _answer(stdout, ("hello", mysql.connector.HAVE_CEXT, mysql.connector.__version__))
    while True:
        try:
            request = pickle.load(stdin)
        except EOFError:
            return
        _, name, target, args = request
        try:
            reply: tuple[Any, ...] = ("ok", run(name, target, False, *args))
        except BaseException:
            reply = ("raised", traceback.format_exc())
        _answer(stdout, reply)
