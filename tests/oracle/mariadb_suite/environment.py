"""The server the files run against, the proxy in front of it, and the reset between files.

The server is the suite's own throwaway MariaDB (proxy/embedded_db.py), with the accounts
mysql-test-run creates (``root`` without a password, from 127.0.0.1 and anywhere) and the
``mtr`` schema the files call (``mtr.add_suppression`` inserts into a table, as in
mysql-test-run; ``mtr.force_restart`` does nothing). The proxy runs in-process
(tests/conftest.py ``start_proxy``).

Login through the proxy: the files log in as ``root`` with an empty password. The proxy greets
with caching_sha2_password; an empty password needs neither TLS nor the RSA key exchange (the
client sends an empty answer), so the runner's default options work unchanged.

Why a reset: about a third of the files leave something behind (tables in ``test``, accounts,
changed global variables) that changes what the next file prints. Before each run the reset
ends leftover sessions (not the admin's: the proxy's alias poller is one), recreates ``test``,
drops databases and accounts the baseline lacked, restores changed baseline accounts, and sets
changed global variables back.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymysql

from proxy.config import load_config
from proxy.embedded_db import EmbeddedServer, start_embedded_server
from tests.conftest import TEST_LOOP, RunningProxy
from tests.support.backend import BackendInfo

logger = logging.getLogger(__name__)

_SETUP = [
    "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('')"
    " OR unix_socket",
    "CREATE USER IF NOT EXISTS root@'%'",
    "GRANT ALL ON *.* TO root@'%' WITH GRANT OPTION",
    "CREATE USER IF NOT EXISTS root@'127.0.0.1'",
    "GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION",
    "CREATE DATABASE IF NOT EXISTS test",
    "CREATE DATABASE IF NOT EXISTS mtr",
    "CREATE TABLE IF NOT EXISTS mtr.test_suppressions (pattern VARCHAR(255))",
    "CREATE PROCEDURE IF NOT EXISTS mtr.add_suppression(pattern VARCHAR(255))"
    " INSERT INTO mtr.test_suppressions VALUES (pattern)",
    "CREATE PROCEDURE IF NOT EXISTS mtr.force_restart() BEGIN END",
]
#: The server options of mysql-test-run's include/default_mysqld.cnf that change what files
#: print (the server's character set above all: ``SET NAMES DEFAULT`` is latin1 there).
MTR_SERVER_OPTIONS = (
    "--character-set-server=latin1",
    "--collation-server=latin1_swedish_ci",
    "--local-infile",
    "--log-bin-trust-function-creators=1",
    "--key-buffer-size=1M",
    "--sort-buffer-size=256K",
    "--max-heap-table-size=1M",
    "--connect-timeout=60",
    # Files create user@localhost and log in as it over TCP (127.0.0.1 resolves to localhost).
    "--skip-name-resolve=0",
)
#: Sessions of the server's own threads, never killed by the reset.
_SYSTEM_USERS = frozenset({"system user", "event_scheduler", "unauthenticated user"})
#: Global variables that change by themselves or cannot be set back.
_VOLATILE_VARIABLES = re.compile(r"^(gtid_|timestamp$|last_insert_id$|rand_seed)")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class SystemTablesChanged(Exception):
    """A file altered the ``mysql`` schema; the server must be replaced."""


def _start_proxy(backend: BackendInfo, backend_url: str) -> RunningProxy:
    """The proxy in-process on port 0, as tests/conftest.py starts it, logged in to the
    backend as ``backend_url``'s account for its own reads.

    The alias poller reads the registry once at start, then once an hour: its reads count in
    the server's global status (``Com_select``, ``Questions``), and files such as
    change_user compare those across a statement, as if no other client ran (the calibration's
    direct runs had none). A function the files create goes through this proxy and is
    watched at once, without a poll."""
    values = {
        "listen": "127.0.0.1:0",
        "backend": backend_url,
        "shutdown_timeout": 5,
        "registry_refresh": 3600,
    }
    return RunningProxy(load_config({**values, "loop": TEST_LOOP}, env={}), backend).start()


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SuiteServer:
    """A throwaway MariaDB set up for the files, its baseline, and a proxy in front of it."""

    def __init__(self) -> None:
        # The server's own temporary directory: /tmp is shared with whatever else runs here.
        self.workdir = Path(tempfile.mkdtemp(prefix="mlproxy-mariadb-suite-"))
        (self.workdir / "tmp").mkdir()
        options = (*MTR_SERVER_OPTIONS, f"--tmpdir={self.workdir / 'tmp'}")
        try:
            self.server: EmbeddedServer = start_embedded_server(
                workdir=self.workdir / "server", extra_args=options
            )
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self.proxy: RunningProxy | None = None
        try:
            with self.admin() as cur:
                for statement in _SETUP:
                    cur.execute(statement)
                self._baseline = self._snapshot(cur)
            backend = BackendInfo(
                self.server.host,
                self.server.port,
                self.server.admin_user,
                self.server.admin_password,
                self.server,
            )
            # With the admin account in --backend, the proxy's alias-registry poller logs in as
            # it, not as the latest client: one steady session, not one that changes account
            # (include/wait_until_count_sessions.inc counts sessions).
            self.proxy = _start_proxy(backend, self.server.url())
        except BaseException:
            self.stop()
            raise

    @property
    def direct_port(self) -> int:
        return self.server.port

    @property
    def proxy_port(self) -> int:
        assert self.proxy is not None
        return self.proxy.port

    def alive(self) -> bool:
        return self.server.process.poll() is None

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        self.server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @contextmanager
    def admin(self) -> Iterator[Any]:
        """A cursor of a direct admin session (autocommit)."""
        connection = pymysql.connect(
            host=self.server.host,
            port=self.server.port,
            user=self.server.admin_user,
            password=self.server.admin_password,
            autocommit=True,
        )
        try:
            with connection.cursor() as cur:
                yield cur
        finally:
            connection.close()

    # --- the reset --------------------------------------------------------------------

    def reset(self) -> None:
        """Bring the server back to the baseline before the next file.

        Raises SystemTablesChanged when a file left the ``mysql`` schema's tables altered
        (sp-destruct breaks mysql.proc on purpose): only a fresh server helps then.
        """
        with self.admin() as cur:
            if self._system_tables(cur) != self._baseline["system_tables"]:
                raise SystemTablesChanged("a table of the mysql schema is not as it was")
            self._end_other_sessions(cur)
            self._reset_databases(cur)
            self._reset_accounts(cur)
            self._reset_variables(cur)
            cur.execute("TRUNCATE mtr.test_suppressions")

    def _snapshot(self, cur: Any) -> dict[str, Any]:
        return {
            "databases": self._databases(cur),
            "accounts": self._accounts(cur),
            "variables": self._variables(cur),
            "system_tables": self._system_tables(cur),
        }

    @staticmethod
    def _system_tables(cur: Any) -> list[tuple[str, str]]:
        """Each table of the ``mysql`` schema with its columns and their types."""
        cur.execute(
            "SELECT TABLE_NAME, GROUP_CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE"
            " ORDER BY ORDINAL_POSITION SEPARATOR ', ') FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = 'mysql' GROUP BY TABLE_NAME ORDER BY TABLE_NAME"
        )
        return [tuple(row) for row in cur.fetchall()]

    @staticmethod
    def _databases(cur: Any) -> set[str]:
        cur.execute("SHOW DATABASES")
        return {row[0] for row in cur.fetchall()}

    @staticmethod
    def _accounts(cur: Any) -> dict[tuple[str, str], tuple[str, list[str]]]:
        """Each account's stored row and grants (what a file could have changed)."""
        cur.execute("SELECT User, Host, Priv FROM mysql.global_priv")
        accounts = {}
        for user, host, priv in cur.fetchall():
            grants: list[str] = []
            if '"is_role":true' not in priv:
                cur.execute(f"SHOW GRANTS FOR {_quote(user)}@{_quote(host)}")
                grants = [row[0] for row in cur.fetchall()]
            accounts[(user, host)] = (priv, grants)
        return accounts

    @staticmethod
    def _variables(cur: Any) -> dict[str, str]:
        cur.execute("SHOW GLOBAL VARIABLES")
        return {name: value for name, value in cur.fetchall()}

    def _end_other_sessions(self, cur: Any) -> None:
        """Wait briefly for the last file's sessions to close, then kill what remains."""
        cur.execute("SELECT CONNECTION_ID()")
        own = cur.fetchone()[0]
        deadline = time.monotonic() + 3
        while True:
            cur.execute("SELECT ID, USER FROM information_schema.PROCESSLIST")
            others = [
                i
                for i, user in cur.fetchall()
                if i != own and user not in _SYSTEM_USERS and user != self.server.admin_user
            ]
            if not others or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for session in others:
            with contextlib.suppress(pymysql.MySQLError):  # it may have ended meanwhile
                cur.execute(f"KILL {int(session)}")

    def _reset_databases(self, cur: Any) -> None:
        for name in self._databases(cur) - self._baseline["databases"]:
            cur.execute(f"DROP DATABASE IF EXISTS `{name.replace('`', '``')}`")
        try:
            cur.execute("DROP DATABASE IF EXISTS test")
        except pymysql.MySQLError:
            # Files the last file wrote into the database's directory (SELECT ... INTO
            # OUTFILE 'name') keep DROP DATABASE from removing it; the tables are gone by now.
            shutil.rmtree(self.server.datadir / "test", ignore_errors=True)
            cur.execute("DROP DATABASE IF EXISTS test")
        cur.execute("CREATE DATABASE test")

    def _reset_accounts(self, cur: Any) -> None:
        baseline = self._baseline["accounts"]
        now = self._accounts(cur)
        for (user, host), (priv, _grants) in now.items():
            if (user, host) not in baseline:
                kind = "ROLE" if '"is_role":true' in priv else "USER"
                target = _quote(user) if kind == "ROLE" else f"{_quote(user)}@{_quote(host)}"
                cur.execute(f"DROP {kind} IF EXISTS {target}")
        for account, state in baseline.items():
            if now.get(account) != state:
                self._restore_account(cur, account, state)
        cur.execute("FLUSH PRIVILEGES")

    @staticmethod
    def _restore_account(cur: Any, account: tuple[str, str], state: tuple[str, list[str]]) -> None:
        """Put back a baseline account a file dropped or changed (its row, then its grants)."""
        user, host = account
        priv, grants = state
        cur.execute(
            "REPLACE INTO mysql.global_priv (Host, User, Priv) VALUES (%s, %s, %s)",
            (host, user, priv),
        )
        cur.execute("FLUSH PRIVILEGES")
        for grant in grants:
            cur.execute(grant)

    def _reset_variables(self, cur: Any) -> None:
        baseline = self._baseline["variables"]
        for name, value in self._variables(cur).items():
            if baseline.get(name, value) == value or _VOLATILE_VARIABLES.match(name):
                continue
            old = baseline[name]
            literal = old if _NUMBER.match(old) else _quote(old)
            try:
                cur.execute(f"SET GLOBAL {name} = {literal}")
            except pymysql.MySQLError as exc:
                logger.debug("cannot set %s back to %r: %s", name, old, exc)
