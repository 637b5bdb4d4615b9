"""Where a process's busiest thread ran while a benchmark ran (bench.ml_fixed_cost).

On a machine whose idle CPUs halt, the scheduler may run the database beside the client
or beside the proxy, and a halted CPU's wake-up per round trip then weighs more than
anything the proxy does (docs/performance.md, "the database's placement"). A benchmark
that pins the client and the proxy reports, for each run, the share of samples that
found the database's busiest thread last on the proxy's CPU, so that a ratio can be read
with its placement.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

#: Seconds between samples: a few hundred per run, a negligible load.
INTERVAL = 0.005


class ThreadPlaces:
    """Samples, while entered, the CPU each thread of ``pid`` last ran on."""

    def __init__(self, pid: int, cpu: int) -> None:
        self._tasks = Path(f"/proc/{pid}/task")
        self._cpu = cpu
        #: Per thread: the CPU of each sample, its CPU time at the first and the last.
        self._cpus: dict[str, list[int]] = {}
        self._first: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ThreadPlaces:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def share(self) -> float | None:
        """The share of the busiest thread's samples on the CPU; None without samples."""
        if not self._cpus:
            return None
        busiest = max(self._cpus, key=lambda tid: self._last[tid] - self._first[tid])
        places = self._cpus[busiest]
        return sum(cpu == self._cpu for cpu in places) / len(places)

    def _sample(self) -> None:
        while not self._stop.wait(INTERVAL):
            for tid, (cpu, ticks) in self._read().items():
                self._cpus.setdefault(tid, []).append(cpu)
                self._first.setdefault(tid, ticks)
                self._last[tid] = ticks

    def _read(self) -> dict[str, tuple[int, int]]:
        """Each thread's last CPU and its CPU time so far (clock ticks)."""
        found: dict[str, tuple[int, int]] = {}
        try:
            tasks = list(self._tasks.iterdir())
        except OSError:
            return found
        for task in tasks:
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # a thread that ended
            found[task.name] = (int(fields[36]), int(fields[11]) + int(fields[12]))
        return found
