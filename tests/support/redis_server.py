"""A throwaway ``redis-server`` for the tests, as the suite starts its MariaDB: the
Debian package's binary, on a free port, in a temporary directory, no persistence, and a
password (so every test also uses one in the URL, where it must never be logged).

Skipped where ``redis-server`` is missing, except in CI (``CI=true``), which installs
it (``./dev test``): there a missing server is an error, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

PASSWORD = "redis-test-secret"
START_TIMEOUT = 10.0


def redis_binary() -> str:
    """The redis-server to run; skips (or fails in CI) when there is none."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the Redis tests: apt-get install redis-server")
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; ``stop()`` and ``start()`` again on the same port
    (a Redis going away mid-run and coming back)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=PASSWORD)

    def start(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "no",
                "--requirepass", PASSWORD,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.RedisError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: see {self.directory}") from exc
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()


def start_redis() -> tuple[RedisServer, tempfile.TemporaryDirectory[str]]:
    binary = redis_binary()
    directory = tempfile.TemporaryDirectory(prefix="mlproxy-redis-")
    server = RedisServer(binary, Path(directory.name))
    server.start()
    return server, directory
