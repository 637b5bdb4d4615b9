"""A throwaway MariaDB/MySQL server started from the binaries installed on this machine.

``mlproxy demo`` and the test suite both need a real backend without Docker: this module
initialises a fresh data directory in a temporary directory, starts ``mariadbd`` (or
``mysqld``) on a free TCP port bound to 127.0.0.1, and creates one password-authenticated
admin account. Everything else is done through the ``mariadb``/``mysql`` command-line client
over the server's unix socket, so the module needs no Python database driver.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(f"mlproxy.{__name__}")

# root's PATH often lacks the sbin directories, and a MySQL tarball lands in /usr/local/mysql.
_EXTRA_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/mysql/bin")
_SERVER_NAMES = ("mariadbd", "mysqld")
_INSTALL_DB_NAMES = ("mariadb-install-db", "mysql_install_db")
_CLIENT_NAMES = ("mariadb", "mysql")

# Small and fast rather than durable: a test backend must start in well under a second.
_COMMON_TUNING = (
    "--innodb-buffer-pool-size=64M",
    "--innodb-flush-log-at-trx-commit=2",
    "--performance-schema=OFF",
    "--character-set-server=utf8mb4",
    "--skip-name-resolve",
    "--skip-log-bin",
)
_MARIADB_TUNING = ("--innodb-log-file-size=16M",)
# MySQL's X plugin would otherwise listen on the fixed port 33060 and collide between servers.
_MYSQL_TUNING = ("--loose-mysqlx=OFF", "--loose-innodb-redo-log-capacity=16M")

_BIND_FAILURE_MARKERS = (
    "Address already in use",
    "Bind on TCP/IP port",
    "Can't start server: Bind",
)
_PORT_ATTEMPTS = 3
_POLL_INTERVAL = 0.05
_MAX_UNIX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin.


class EmbeddedServerError(Exception):
    """The embedded server could not be found, initialised, started or queried."""


@dataclass(frozen=True)
class ServerTools:
    """The binaries that belong to one server installation, and which flavour it is."""

    server: str
    client: str
    install_cmd: tuple[str, ...]
    is_mariadb: bool


@dataclass(frozen=True)
class _Layout:
    """Where the files of one server instance live inside its working directory."""

    root: Path

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_path(self) -> Path:
        return self.root / "mysqld.sock"

    @property
    def error_log(self) -> Path:
        return self.root / "error.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "mysqld.pid"

    @property
    def console_log(self) -> Path:
        return self.root / "mysqld.out"

    @property
    def tmpdir(self) -> Path:
        """The server's own temporary directory: a MariaDB server starting with /tmp as
        its tmpdir deletes every ``#sql*`` file there, other servers' temporary tables
        included (their next statement then fails with "Error on delete ... Errcode: 2")."""
        return self.root / "tmp"


@dataclass
class EmbeddedServer:
    """A running server started by :func:`start_embedded_server`; stop it when done."""

    host: str
    port: int
    socket_path: str
    datadir: Path
    process: subprocess.Popen[bytes]
    admin_user: str
    admin_password: str
    client_binary: str = "mariadb"
    socket_user: str = "root"
    remove_workdir: bool = False

    @property
    def workdir(self) -> Path:
        """The directory holding the datadir, socket, pid file and logs."""
        return self.datadir.parent

    @property
    def error_log(self) -> Path:
        """The server's error log, useful when a test needs to explain a crash."""
        return self.workdir / "error.log"

    def stop(self, timeout: float = 20) -> None:
        """Shut down cleanly (SIGTERM), SIGKILL after ``timeout``; delete a temporary workdir."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("server pid %d ignored SIGTERM; killing it", self.process.pid)
                self.kill()
        atexit.unregister(self.stop)
        if self.remove_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; files stay so that it can be restarted."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def url(
        self, user: str | None = None, password: str | None = None, database: str | None = None
    ) -> str:
        """A ``mysql://user:password@host:port/database`` URL; admin credentials by default."""
        user = self.admin_user if user is None else user
        password = self.admin_password if password is None else password
        path = f"/{quote(database, safe='')}" if database else ""
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
        return f"mysql://{credentials}@{self.host}:{self.port}{path}"


# --- locating binaries -------------------------------------------------------------------


def _search_path(first: Sequence[str] = ()) -> str:
    """PATH plus the sbin/bin directories a login shell of root would have."""
    dirs = [*first, *os.environ.get("PATH", "").split(os.pathsep), *_EXTRA_DIRS]
    return os.pathsep.join(dict.fromkeys(d for d in dirs if d))


def _which(names: Sequence[str], first: Sequence[str] = ()) -> str | None:
    """The first of ``names`` found, searching the directories in ``first`` before PATH."""
    path = _search_path(first)
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def find_server_binary() -> str | None:
    """Path of ``mariadbd`` or ``mysqld``, or None when no server is installed."""
    return _which(_SERVER_NAMES)


def _is_mariadb(server: str) -> bool:
    """Whether ``server`` is MariaDB (``mysqld`` is often a symlink to ``mariadbd``)."""
    version = _run([server, "--no-defaults", "--version"], what="server version check", timeout=30)
    return "mariadb" in version.lower()


def find_server_tools() -> ServerTools:
    """Server, client and data-directory initialiser of one installation, or raise."""
    server = find_server_binary()
    if server is None:
        raise EmbeddedServerError("no mariadbd or mysqld found on PATH; install mariadb-server")
    near = [str(Path(server).parent)]
    client = _which(_CLIENT_NAMES, near)
    if client is None:
        raise EmbeddedServerError("no mariadb or mysql client found on PATH; install it")
    if not _is_mariadb(server):
        return ServerTools(server, client, (server, "--initialize-insecure"), is_mariadb=False)
    install_db = _which(_INSTALL_DB_NAMES, near)
    if install_db is None:
        raise EmbeddedServerError("no mariadb-install-db found on PATH; install mariadb-server")
    return ServerTools(server, client, (install_db,), is_mariadb=True)


# --- subprocess helpers ------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    """The environment without MYSQL_*/MARIADB_* variables that would redirect the client."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "MARIADB_"))}


def _one_line(text: str, lines: int = 6) -> str:
    """The last few non-empty lines of ``text`` joined into one line for an error message."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "(no output)"


def _kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL a helper and its children (the installer forks mariadbd) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _run(cmd: Sequence[str], *, what: str, timeout: float, stdin: str | None = None) -> str:
    """Run ``cmd`` quietly and return its stdout; on failure raise quoting its output.

    The helper gets its own process group so that a timeout also kills its children.
    """
    logger.debug("running %s", " ".join(cmd))
    try:
        process = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
            env=_clean_env(),
            start_new_session=True,
        )
    except OSError as exc:
        raise EmbeddedServerError(f"{what} could not run {cmd[0]}: {exc}") from exc
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(process)
        raise EmbeddedServerError(f"{what} timed out after {timeout:g}s: {cmd[0]}") from exc
    except BaseException:
        _kill_group(process)
        raise
    if process.returncode != 0:
        output = _one_line(stderr + "\n" + stdout)
        raise EmbeddedServerError(f"{what} failed (exit {process.returncode}): {output}")
    return stdout


# --- data directory ----------------------------------------------------------------------


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _user_args() -> list[str]:
    """``--user=root`` when root (the server refuses to run as root without it), else none."""
    return ["--user=root"] if _running_as_root() else []


def _os_user() -> str:
    """Name of the effective OS user, which unix-socket authentication compares against."""
    return pwd.getpwuid(os.geteuid()).pw_name


def _socket_user(tools: ServerTools) -> str:
    """Account the client uses over the socket: MariaDB maps it to the OS user, MySQL to root."""
    return _os_user() if tools.is_mariadb else "root"


def _install_cmd(tools: ServerTools, layout: _Layout) -> list[str]:
    """Command line that creates the system tables in an empty datadir."""
    head = [tools.install_cmd[0], "--no-defaults", *tools.install_cmd[1:]]
    common = [f"--datadir={layout.datadir}", *_user_args()]
    if not tools.is_mariadb:
        return [*head, *common]
    return [
        *head,
        *common,
        "--auth-root-authentication-method=socket",
        f"--auth-root-socket-user={_socket_user(tools)}",
        "--skip-test-db",
        "--force",  # skip the resolveip check of the hostname; sandboxes often lack DNS
        *_MARIADB_TUNING,
        "--innodb-buffer-pool-size=64M",
    ]


def _is_initialised(layout: _Layout) -> bool:
    """Whether the datadir already holds system tables (a restart on the same workdir)."""
    return (layout.datadir / "mysql").is_dir()


def _initialise(tools: ServerTools, layout: _Layout, timeout: float) -> None:
    """Create the system tables; output is captured and only shown when this fails."""
    started = time.monotonic()
    _run(_install_cmd(tools, layout), what="initialising the data directory", timeout=timeout)
    logger.debug("datadir %s initialised in %.2fs", layout.datadir, time.monotonic() - started)


# --- server process ----------------------------------------------------------------------


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_cmd(
    tools: ServerTools, layout: _Layout, port: int, options: Sequence[str]
) -> list[str]:
    """The server command line: loopback only, files inside the workdir, small footprint."""
    flavour = _MARIADB_TUNING if tools.is_mariadb else _MYSQL_TUNING
    return [
        tools.server,
        "--no-defaults",
        f"--datadir={layout.datadir}",
        *_user_args(),
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={layout.socket_path}",
        f"--pid-file={layout.pid_file}",
        f"--log-error={layout.error_log}",
        f"--tmpdir={layout.tmpdir}",
        *_COMMON_TUNING,
        *flavour,
        *options,
    ]


def _launch(cmd: list[str], layout: _Layout) -> subprocess.Popen[bytes]:
    """Start the server in the background, its console output going to a file."""
    layout.socket_path.unlink(missing_ok=True)  # left behind by a killed predecessor
    logger.debug("starting %s", " ".join(cmd))
    with layout.console_log.open("ab") as console:
        try:
            return subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=console, env=_clean_env()
            )
        except OSError as exc:
            raise EmbeddedServerError(f"could not run {cmd[0]}: {exc}") from exc


def _log_size(path: Path) -> int:
    """Current size of a log file, so that only this run's lines are quoted later."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _log_since(path: Path, offset: int) -> str:
    """The part of a log file written after ``offset``."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _log_marks(layout: _Layout) -> tuple[int, int]:
    """Sizes of the error log and the console log before a start attempt."""
    return _log_size(layout.error_log), _log_size(layout.console_log)


def _startup_output(layout: _Layout, marks: tuple[int, int]) -> str:
    """What this start attempt wrote: option errors reach only the console, the rest the log."""
    error_log = _log_since(layout.error_log, marks[0])
    return _one_line(error_log + "\n" + _log_since(layout.console_log, marks[1]))


def _greets(socket_path: Path, timeout: float) -> bool:
    """Whether a server answers on the unix socket with its handshake packet."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            client.connect(str(socket_path))
            return len(client.recv(64)) >= 4
        except OSError:
            return False


def _wait_until_ready(
    process: subprocess.Popen[bytes], layout: _Layout, marks: tuple[int, int], timeout: float
) -> None:
    """Poll the unix socket until the server greets; raise if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = _startup_output(layout, marks)
            code = process.returncode
            raise EmbeddedServerError(f"server exited with code {code} during start-up: {output}")
        if layout.socket_path.exists() and _greets(layout.socket_path, _POLL_INTERVAL * 20):
            return
        time.sleep(_POLL_INTERVAL)
    _stop_process(process)
    output = _startup_output(layout, marks)
    raise EmbeddedServerError(f"server not ready after {timeout:g}s: {output}")


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """Kill a server that failed to start and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait()


def _is_bind_failure(error: EmbeddedServerError) -> bool:
    """Whether start-up failed because someone else took the port in the meantime."""
    return any(marker in str(error) for marker in _BIND_FAILURE_MARKERS)


def _start_process(
    tools: ServerTools, layout: _Layout, port: int, options: Sequence[str], timeout: float
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server and wait for it; with ``port=0`` retry if the picked port got taken."""
    attempts = _PORT_ATTEMPTS if port == 0 else 1
    for attempt in range(1, attempts + 1):
        chosen = port or _free_port()
        marks = _log_marks(layout)
        process = _launch(_server_cmd(tools, layout, chosen, options), layout)
        try:
            _wait_until_ready(process, layout, marks, timeout)
        except EmbeddedServerError as exc:  # the process is gone already
            if attempt == attempts or not _is_bind_failure(exc):
                raise
            logger.info("port %d was taken before the server bound it; retrying", chosen)
            continue
        except BaseException:  # e.g. Ctrl-C while waiting: do not leave a server behind
            _stop_process(process)
            raise
        return process, chosen
    raise AssertionError("unreachable")  # pragma: no cover


# --- SQL over the unix socket ------------------------------------------------------------


def _sql_string(value: str) -> str:
    """``value`` as a single-quoted SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _client_cmd(server: EmbeddedServer, database: str | None) -> list[str]:
    """Command line of the client talking to ``server`` as its socket superuser."""
    cmd = [
        server.client_binary,
        "--no-defaults",
        "--protocol=socket",
        f"--socket={server.socket_path}",
        f"--user={server.socket_user}",
        "--batch",
        "--default-character-set=utf8mb4",
    ]
    return [*cmd, f"--database={database}"] if database else cmd


def run_sql(
    server: EmbeddedServer, sql: str, database: str | None = None, *, timeout: float = 300.0
) -> str:
    """Run one or more SQL statements as the superuser over the unix socket; return stdout.

    The SQL goes through stdin, so files of any size (and passwords) stay off the command line.
    """
    return _run(_client_cmd(server, database), what="SQL via client", timeout=timeout, stdin=sql)


def _cleanup_sql(is_mariadb: bool) -> list[str]:
    """Statements removing anonymous accounts (they would shadow real logins) and cruft."""
    hosts = dict.fromkeys(["localhost", "127.0.0.1", "::1", "%", socket.gethostname().lower()])
    drop = "DROP USER IF EXISTS " + ", ".join(f"''@{_sql_string(h)}" for h in hosts)
    if not is_mariadb:
        return [drop]
    return [
        drop,
        "DELETE FROM mysql.global_priv WHERE User = ''",  # anonymous accounts on any host
        # The installer grants root@<hostname> a proxy right that --skip-name-resolve
        # ignores, with a warning on every privilege reload.
        "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost'",
    ]


def _admin_user_sql(user: str, password: str) -> list[str]:
    """Statements creating (or resetting) the admin account on every host.

    ``IDENTIFIED BY`` uses the server's default plugin: mysql_native_password on MariaDB.
    """
    statements = []
    for host in ("%", "localhost"):
        account = f"{_sql_string(user)}@{_sql_string(host)}"
        statements += [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {_sql_string(password)}",
            f"ALTER USER {account} IDENTIFIED BY {_sql_string(password)}",
            f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION",
        ]
    return statements


def _bootstrap(server: EmbeddedServer, is_mariadb: bool, timeout: float) -> None:
    """Remove anonymous accounts and create the admin account."""
    statements = [
        *_cleanup_sql(is_mariadb),
        *_admin_user_sql(server.admin_user, server.admin_password),
        "FLUSH PRIVILEGES",
    ]
    run_sql(server, ";\n".join(statements) + ";\n", timeout=timeout)


# --- entry point -------------------------------------------------------------------------


def _prepare_workdir(workdir: Path | None) -> tuple[_Layout, bool]:
    """The layout to use, and whether the directory is ours to delete on stop."""
    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="mlproxy-db-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    layout = _Layout(root.resolve())
    layout.tmpdir.mkdir(exist_ok=True)
    if len(str(layout.socket_path)) > _MAX_UNIX_SOCKET_PATH:
        if owned:
            shutil.rmtree(root, ignore_errors=True)
        raise EmbeddedServerError(f"workdir path too long for a unix socket: {layout.root}")
    return layout, owned


def start_embedded_server(
    *,
    workdir: Path | None = None,
    port: int = 0,
    max_allowed_packet: str = "256M",
    startup_timeout: float = 60.0,
    admin_user: str = "mlproxy_admin",
    admin_password: str = "mlproxy-admin-pw",
    extra_args: Sequence[str] = (),
) -> EmbeddedServer:
    """Start a private server on 127.0.0.1 and return it once the admin account works.

    Without ``workdir`` everything lives in a new temporary directory that ``stop()`` deletes.
    With ``workdir`` the files stay; an already initialised datadir there is reused, which is
    how a crash test restarts a killed server (pass the old ``port`` to keep the address).
    ``extra_args`` are more server options (e.g. ``--ssl-cert=...`` for a TLS backend).
    """
    tools = find_server_tools()
    layout, owned = _prepare_workdir(workdir)
    started = time.monotonic()
    try:
        if not _is_initialised(layout):
            _initialise(tools, layout, startup_timeout)
        options = [f"--max-allowed-packet={max_allowed_packet}", *extra_args]
        process, chosen = _start_process(tools, layout, port, options, startup_timeout)
    except BaseException:
        if owned:
            shutil.rmtree(layout.root, ignore_errors=True)
        raise
    server = EmbeddedServer(
        host="127.0.0.1",
        port=chosen,
        socket_path=str(layout.socket_path),
        datadir=layout.datadir,
        process=process,
        admin_user=admin_user,
        admin_password=admin_password,
        client_binary=tools.client,
        socket_user=_socket_user(tools),
        remove_workdir=owned,
    )
    atexit.register(server.stop)
    try:
        _bootstrap(server, tools.is_mariadb, startup_timeout)
    except BaseException:
        server.stop()
        raise
    elapsed = time.monotonic() - started
    logger.info("%s ready on 127.0.0.1:%d in %.2fs", Path(tools.server).name, chosen, elapsed)
    return server
