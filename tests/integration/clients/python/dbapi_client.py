"""The client matrix's steps (../README.md) with a Python DB-API library: PyMySQL,
mysql-connector (pure Python or its C extension) or MariaDB's connector, by ``MX_DRIVER``.

Run as a script (``python dbapi_client.py``); prints one JSON line per step.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

if os.environ.get("MX_DRIVER") == "connector_c":
    # Before anything loads Python's ssl: the C extension's wheel bundles a newer
    # libssl.so.3, which the loader would otherwise take from the system (see
    # tests/support/prepared_worker.py).
    import _mysql_connector  # noqa: F401

STEPS = (
    "connect",
    "connect_tls",
    "params",
    "server_prepared",
    "client_prepared",
    "transaction",
    "call",
    "big_result",
    "emoji",
    "ml_constant",
    "ml_column",
    "error_1146",
    "close",
)
EMOJI = "😀 ok 🎉 ünï"
PARAM_TEXT = 'it\'s "q" \\ ünï 😀'
ITEMS_FROM = "SELECT id, name, price FROM items WHERE id >= ? ORDER BY id LIMIT 3"
SENTENCE = "I love this, thank you!"


class Unsupported(Exception):
    """The library has no such feature (reported as a failed step saying so)."""


def text(value: Any) -> str | None:
    """A value as the detail shows it: a string, or None for NULL."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode()
    return str(value)


def rows_as_text(rows: Sequence[Sequence[Any]]) -> list[list[str | None]]:
    return [[text(value) for value in row] for row in rows]


class Driver:
    """What differs between the libraries: connecting, placeholders, errors, prepared."""

    placeholder = "%s"

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def options(self) -> dict[str, Any]:
        return {
            "host": self.env["MX_HOST"],
            "port": int(self.env["MX_PORT"]),
            "user": self.env["MX_USER"],
            "password": self.env["MX_PASSWORD"],
            "database": self.env["MX_DATABASE"],
        }

    def connect(self, tls: bool) -> Any:
        raise NotImplementedError

    def sql(self, statement: str) -> str:
        return statement.replace("?", self.placeholder)

    def server_cursor(self, conn: Any) -> Any:
        raise Unsupported("this library has no server-side prepared statements")

    def client_cursor(self, conn: Any) -> Any:
        return conn.cursor()

    def error(self, exc: BaseException) -> dict[str, Any]:
        code = getattr(exc, "errno", None)
        if code is None and getattr(exc, "args", None) and isinstance(exc.args[0], int):
            code = exc.args[0]
        return {"code": code, "sqlstate": getattr(exc, "sqlstate", None), "error": str(exc)}


class PyMySQL(Driver):
    def connect(self, tls: bool) -> Any:
        import pymysql

        options = self.options() | {"charset": "utf8mb4"}
        if tls:
            options |= {
                "ssl_ca": self.env["MX_TLS_CA"],
                "ssl_verify_cert": True,
                "ssl_verify_identity": True,
            }
        return pymysql.connect(**options)


class Connector(Driver):
    def __init__(self, env: dict[str, str], pure: bool) -> None:
        super().__init__(env)
        self.pure = pure

    def connect(self, tls: bool) -> Any:
        import mysql.connector

        options = self.options() | {"use_pure": self.pure}
        if tls:
            options |= {"ssl_ca": self.env["MX_TLS_CA"], "ssl_verify_identity": True}
        conn = mysql.connector.connect(**options)
        if not self.pure and type(conn).__name__ != "CMySQLConnection":
            raise RuntimeError(f"asked for the C extension, got {type(conn).__name__}")
        return conn

    def server_cursor(self, conn: Any) -> Any:
        return conn.cursor(prepared=True)


class MariaDB(Driver):
    placeholder = "?"

    def connect(self, tls: bool) -> Any:
        import mariadb

        options = self.options()
        if tls:
            options |= {"ssl_ca": self.env["MX_TLS_CA"], "ssl_verify_cert": True}
        return mariadb.connect(**options)

    def server_cursor(self, conn: Any) -> Any:
        return conn.cursor(binary=True)

    def client_cursor(self, conn: Any) -> Any:
        return conn.cursor(binary=False)


DRIVERS: dict[str, Callable[[dict[str, str]], Driver]] = {
    "pymysql": PyMySQL,
    "connector_pure": lambda env: Connector(env, pure=True),
    "connector_c": lambda env: Connector(env, pure=False),
    "mariadb": MariaDB,
}


class Run:
    """The steps, on one main connection (reopened if a step lost it)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.conn: Any = None

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(self.driver.sql(statement), tuple(params) or None)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def main(self) -> Any:
        if self.conn is None:
            self.conn = self.driver.connect(tls=False)
        return self.conn

    def step_connect(self) -> Any:
        self.conn = self.driver.connect(tls=False)
        return text(self.query("SELECT CURRENT_USER()")[0][0])

    def step_connect_tls(self) -> Any:
        conn = self.driver.connect(tls=True)
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT CURRENT_USER()")
            (user,) = cursor.fetchone()
            cursor.close()
        finally:
            conn.close()
        return text(user)

    def step_params(self) -> Any:
        self.main()
        return rows_as_text(self.query("SELECT ? AS i, ? AS s, ? AS n", (42, PARAM_TEXT, None)))

    def _items(self, cursor: Any) -> Any:
        results = []
        for start in (2, 8):
            cursor.execute(self.driver.sql(ITEMS_FROM), (start,))
            results.append(rows_as_text(cursor.fetchall()))
        cursor.close()
        return results

    def step_server_prepared(self) -> Any:
        return self._items(self.driver.server_cursor(self.main()))

    def step_client_prepared(self) -> Any:
        return self._items(self.driver.client_cursor(self.main()))

    def step_transaction(self) -> Any:
        conn = self.main()
        self.query("DELETE FROM scratch")
        conn.commit()
        self.query("INSERT INTO scratch (id, txt) VALUES (?, ?)", (1, "in a transaction"))
        inside = self.query("SELECT COUNT(*) FROM scratch")[0][0]
        conn.rollback()
        after = self.query("SELECT COUNT(*) FROM scratch")[0][0]
        return [text(inside), text(after)]

    def step_call(self) -> Any:
        cursor = self.main().cursor()
        cursor.execute("CALL items_upto(3)")
        rows = rows_as_text(cursor.fetchall())
        while cursor.nextset():
            if cursor.description:
                rows += rows_as_text(cursor.fetchall())
        cursor.close()
        return {"rows": rows, "after": text(self.query("SELECT 1")[0][0])}

    def step_big_result(self) -> Any:
        rows = self.query("SELECT seq, CONCAT('row-', seq) FROM seq_1_to_100000")
        return {
            "rows": len(rows),
            "sum": sum(int(seq) for seq, _ in rows),
            "chars": sum(len(text(label) or "") for _, label in rows),
        }

    def step_emoji(self) -> Any:
        conn = self.main()
        self.query("DELETE FROM scratch")
        self.query("INSERT INTO scratch (id, txt) VALUES (?, ?)", (2, EMOJI))
        conn.commit()
        value, length, hexed = self.query("SELECT txt, CHAR_LENGTH(txt), HEX(txt) FROM scratch")[0]
        detail = [text(value), text(length), text(hexed)]
        return detail, text(value) == EMOJI

    def step_ml_constant(self) -> Any:
        self.main()
        rows = self.query(
            "SELECT aws_comprehend_detect_sentiment(?, 'en'),"
            " aws_comprehend_detect_sentiment_confidence(?, 'en')".replace("?", f"'{SENTENCE}'")
        )
        return rows_as_text(rows)

    def step_ml_column(self) -> Any:
        rows = self.query(
            "SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM ml_texts ORDER BY id"
        )
        return {"rows": len(rows), "labels": [text(label) for _, label in rows]}

    def step_error_1146(self) -> Any:
        try:
            self.query("SELECT * FROM no_such_table")
        except Exception as exc:
            error = self.driver.error(exc)
        else:
            return {"error": None}, False
        after = text(self.query("SELECT 1")[0][0])
        detail = {"code": error["code"], "sqlstate": error["sqlstate"], "after": after}
        return detail, error["code"] == 1146

    def step_close(self) -> Any:
        conn, self.conn = self.main(), None
        conn.close()
        return None

    def run(self) -> None:
        for name in STEPS:
            try:
                result = getattr(self, f"step_{name}")()
            except Exception as exc:
                self.report(name, False, self.driver.error(exc) | {"type": type(exc).__name__})
                self.reset()
                continue
            detail, ok = result if isinstance(result, tuple) else (result, True)
            self.report(name, ok, detail)

    def reset(self) -> None:
        """After a failed step the main connection may be unusable: start a new one."""
        if self.conn is not None:
            try:
                self.conn.rollback()
                self.query("SELECT 1")
            except Exception:
                with contextlib.suppress(Exception):
                    self.conn.close()
                self.conn = None

    @staticmethod
    def report(step: str, ok: bool, detail: Any) -> None:
        print(json.dumps({"step": step, "ok": ok, "detail": detail}), flush=True)


def main() -> int:
    env = dict(os.environ)
    Run(DRIVERS[env["MX_DRIVER"]](env)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
