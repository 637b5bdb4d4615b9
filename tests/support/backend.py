"""Which MySQL-compatible backend the test suite talks to, and how to tear it down.

Selection order:

1. ``MLPROXY_TEST_BACKEND=mysql://user:password@host:port`` names an existing server, used as-is.
2. A MySQL 8 container through testcontainers, when a Docker engine answers.
3. A throwaway server from the locally installed ``mariadbd``/``mysqld`` (proxy.embedded_db).
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from proxy.embedded_db import EmbeddedServer, start_embedded_server

logger = logging.getLogger(__name__)

BACKEND_ENV = "MLPROXY_TEST_BACKEND"
MYSQL_IMAGE = "mysql:8.0"
CONTAINER_ROOT_PASSWORD = "mlproxy-root-pw"
DOCKER_PING_TIMEOUT = 5


@dataclass
class BackendInfo:
    """Address and admin credentials of the backend; ``server`` only when we started it."""

    host: str
    port: int
    admin_user: str
    admin_password: str
    server: EmbeddedServer | None


def _nothing() -> None:
    """Teardown of a backend we did not start."""


def backend_from_url(url: str) -> BackendInfo:
    """Parse ``mysql://user:password@host:port`` (user and password percent-encoded)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname or parts.username is None:
        raise ValueError(f"{BACKEND_ENV} must look like mysql://user:password@host:port: {url!r}")
    return BackendInfo(
        host=parts.hostname,
        port=parts.port or 3306,
        admin_user=unquote(parts.username),
        admin_password=unquote(parts.password or ""),
        server=None,
    )


def _docker_cli_answers(cli: str) -> bool:
    """Whether ``docker info`` reaches an engine within the timeout."""
    try:
        result = subprocess.run(
            [cli, "info", "--format", "{{.ServerVersion}}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=DOCKER_PING_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.debug("docker info failed: %s", exc)
        return False
    return result.returncode == 0


def _docker_sdk_answers() -> bool:
    """Whether the Docker SDK can ping an engine (used when there is no docker CLI).

    A failed connection leaks a socket inside urllib3; its ResourceWarning would be turned into
    an error by the suite's warning filters, so collect it here with the warning silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker

            client = docker.from_env(timeout=DOCKER_PING_TIMEOUT)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception as exc:
            logger.debug("Docker SDK ping failed: %s", exc)
            return False
        finally:
            gc.collect()


def docker_available() -> bool:
    """Whether a Docker engine answers within a few seconds; never raises."""
    cli = shutil.which("docker")
    return _docker_cli_answers(cli) if cli else _docker_sdk_answers()


def _mysql_container_class() -> Any:
    """testcontainers' MySqlContainer; its old ``testcontainers.mysql`` path warns on import."""
    try:
        from testcontainers.community.mysql import MySqlContainer
    except ImportError:
        from testcontainers.mysql import MySqlContainer
    return MySqlContainer


def _start_container() -> tuple[BackendInfo, Callable[[], None]]:
    """A MySQL 8 container, logged into as root."""
    container = _mysql_container_class()(
        MYSQL_IMAGE, username="root", password=CONTAINER_ROOT_PASSWORD
    ).with_command("--max-allowed-packet=256M")
    container.start()
    try:
        info = BackendInfo(
            host=container.get_container_host_ip(),
            port=int(container.get_exposed_port(3306)),
            admin_user="root",
            admin_password=CONTAINER_ROOT_PASSWORD,
            server=None,
        )
    except BaseException:
        container.stop()
        raise
    return info, container.stop


def _start_embedded() -> tuple[BackendInfo, Callable[[], None]]:
    """A throwaway server from the local binaries."""
    server = start_embedded_server()
    info = BackendInfo(
        host=server.host,
        port=server.port,
        admin_user=server.admin_user,
        admin_password=server.admin_password,
        server=server,
    )
    return info, server.stop


def provide_backend() -> tuple[BackendInfo, Callable[[], None]]:
    """The backend to test against and the callable that tears it down."""
    url = os.environ.get(BACKEND_ENV)
    if url:
        logger.info("using the backend named by %s", BACKEND_ENV)
        return backend_from_url(url), _nothing
    if docker_available():
        logger.info("starting a %s container", MYSQL_IMAGE)
        return _start_container()
    logger.info("no Docker engine; starting an embedded server")
    return _start_embedded()
