"""The processes a benchmark run starts: the proxy and the bare relay, each a subprocess
whose address is read from its log and whose memory is read from /proc."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
_LISTENING = re.compile(rb"listening on ([0-9.]+):(\d+)")


@dataclass(frozen=True)
class Memory:
    """Resident set size now and its peak since start (or since the last reset), in bytes."""

    rss: int
    peak: int


def read_memory(pid: int) -> Memory:
    """VmRSS and VmHWM of a process, from /proc/PID/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return Memory(values["VmRSS"], values["VmHWM"])


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (writing 5 to clear_refs); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        log.warning("cannot reset the peak RSS of pid %d: %s", pid, exc)
        return False
    return True


@dataclass
class Service:
    """A listening subprocess: the proxy or the relay."""

    name: str
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    temporary_log: bool = True

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory(self) -> Memory:
        return read_memory(self.pid)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL after ``timeout``. A temporary log is deleted after a
        clean exit and kept, with a warning, for a post-mortem otherwise."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM; killing it", self.name)
                self.process.kill()
                self.process.wait()
        if self.process.returncode != 0:
            log.warning(
                "%s exited %d; its log: %s", self.name, self.process.returncode, self.log_path
            )
        elif self.temporary_log:
            self.log_path.unlink(missing_ok=True)


def _wait_for_address(
    process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> tuple[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_bytes())
        if match:
            return match.group(1).decode(), int(match.group(2))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{log_path.name}: not listening (exit {process.poll()}): {tail}")


def start_service(
    name: str, args: list[str], log_dir: Path | None = None, timeout: float = 60
) -> Service:
    """Run ``python -m ARGS`` from the repository root and wait until it listens.

    Its output goes to a log file in ``log_dir`` (default: the temporary directory).
    """
    handle, name_of_log = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log", dir=log_dir)
    os.close(handle)
    log_path = Path(name_of_log)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        host, port = _wait_for_address(process, log_path, timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
        raise
    log.info("%s (pid %d) listening on %s:%d, log %s", name, process.pid, host, port, log_path)
    return Service(name, process, host, port, log_path, temporary_log=log_dir is None)


def start_proxy(
    backend_host: str,
    backend_port: int,
    log_dir: Path | None = None,
    *,
    loop: str | None = None,
    workers: int | None = None,
) -> Service:
    """The proxy as deployed: ``python -m proxy serve``, default settings unless ``loop``
    or ``workers`` are given. With several workers, the memory read from /proc is the
    supervisor's, not the workers'."""
    backend = f"mysql://{backend_host}:{backend_port}"
    args = ["proxy", "serve", "--listen", "127.0.0.1:0", "--backend", backend]
    if loop is not None:
        args += ["--loop", loop]
    if workers is not None:
        args += ["--workers", str(workers)]
    return start_service("proxy", args, log_dir)


def start_relay(backend_host: str, backend_port: int, loop: str = "auto") -> Service:
    """The bare byte relay of bench.relay."""
    backend = f"{backend_host}:{backend_port}"
    args = ["bench.relay", "--listen", "127.0.0.1:0", "--backend", backend, "--loop", loop]
    return start_service("relay", args)
