"""The collector settings a proxy process takes once started (proxy.heap)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from proxy.heap import YOUNG_THRESHOLD

PROBE = """
import gc
from proxy.heap import settle_after_startup
alive = [[i] for i in range(1000)]
settle_after_startup()
print(gc.get_threshold()[0], gc.get_freeze_count() >= 1000)
"""


def test_startup_objects_are_frozen_and_young_passes_are_rarer() -> None:
    # In a child process: freezing is for the whole life of a process.
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout.split()
    assert out == [str(YOUNG_THRESHOLD), "True"]
