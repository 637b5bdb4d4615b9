"""Run a command in the conditions of a container, without a container engine.

The conditions the image's promises depend on (deploy/Dockerfile, deploy/kubernetes/):

- the process is PID 1 of its own PID namespace, where the kernel drops every signal the
  process installed no handler for: a SIGTERM is only seen if the process catches it;
- the filesystem is read-only but for a fresh tmpfs at /tmp (Kubernetes'
  ``readOnlyRootFilesystem`` with an emptyDir at /tmp): a write anywhere else fails.
  The host's /tmp is hidden, so what the command reads must live elsewhere.

util-linux's ``unshare`` makes both (new PID and mount namespaces; the remounts are private
to the new mount namespace). It needs root, as CI has; ``available()`` says whether it
works here. The network is the host's, so tests reach the process on the loopback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

#: Inside the namespaces, before the command: everything read-only (the root, and the
#: mount holding $READ_ONLY_PROBE if that is another), proof that the probe folder cannot
#: be written, a tmpfs at /tmp, then exec: the command becomes PID 1.
_ENTER = r"""
set -eu
for target in / "$(findmnt -n -o TARGET -T "$READ_ONLY_PROBE")"; do
    mount -o remount,bind,ro "$target"
done
if touch "$READ_ONLY_PROBE/.container-write-probe" 2>/dev/null; then
    echo "container: $READ_ONLY_PROBE is still writable" >&2
    exit 97
fi
unset READ_ONLY_PROBE
mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp
exec "$@"
"""


#: New PID and mount namespaces (--mount-proc gives the new PID namespace its own /proc);
#: PID 1 is killed with unshare.
UNSHARE = ("unshare", "--pid", "--fork", "--kill-child", "--mount-proc")


@functools.cache
def available() -> bool:
    """Root, unshare, and namespaces the kernel lets us make."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False
    )
    return done.returncode == 0


class Container:
    """A command running as PID 1 on a read-only filesystem (module docstring)."""

    def __init__(self, argv: list[str], env: dict[str, str], read_only: Path, **popen: Any) -> None:
        """``read_only``: a folder outside /tmp the command reads (its install), proved
        unwritable before the command starts."""
        assert not read_only.resolve().is_relative_to("/tmp"), "/tmp is hidden inside"
        env = {**env, "READ_ONLY_PROBE": str(read_only)}
        # The image's working directory (its runtime stage sets none): a checkout under
        # /tmp would vanish under the tmpfs, and --workers' spawned children chdir to it.
        popen.setdefault("cwd", "/")
        self.process = subprocess.Popen(
            [*UNSHARE, "sh", "-c", _ENTER, "container", *argv],
            env=env,
            **popen,
        )

    def pid1(self, within: float = 10.0) -> int:
        """The host's pid of the command (PID 1 inside): unshare's only child."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # /proc races the process's start
                found = children.read_text().split()
                if found:
                    return int(found[0])
            time.sleep(0.02)
        raise TimeoutError("the container's PID 1 did not appear")

    def pid_inside(self) -> int:
        """The command's pid in its own PID namespace (the last of NSpid's)."""
        return int(self._status("NSpid").split()[-1])

    def catches(self, sig: signal.Signals) -> bool:
        """Whether PID 1 has a handler for ``sig`` (the SigCgt mask of /proc/PID/status)."""
        return bool(int(self._status("SigCgt"), 16) & (1 << (sig - 1)))

    def _status(self, field: str) -> str:
        status = Path(f"/proc/{self.pid1()}/status").read_text()
        return next(line for line in status.splitlines() if line.startswith(field + ":"))[
            len(field) + 1 :
        ].strip()

    def signal(self, sig: signal.Signals) -> None:
        """As ``docker stop`` or the kubelet sends it: from outside, to PID 1."""
        os.kill(self.pid1(), sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL to unshare, which --kill-child passes on to PID 1."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
