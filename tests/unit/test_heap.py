"""The collector settings a proxy process takes once started (proxy.transport.heap)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proxy.transport.heap import YOUNG_THRESHOLD

PROBE = """
import gc
from proxy.transport.heap import settle_after_startup
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
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    assert out == [str(YOUNG_THRESHOLD), "True"]


#: Frees six 16 MiB blocks, with small allocations between, and prints how much of
#: them the process still holds (MiB of RSS).
LARGE_BLOCKS = """
import sys
from proxy.transport.heap import settle_after_startup

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

if sys.argv[1] == "settled":
    settle_after_startup()
base, keep = rss(), []
for _ in range(6):
    block = bytearray(16 << 20)
    block[::4096] = b"x" * len(block[::4096])  # touched: its pages are resident
    keep.append(bytearray(1000))
    del block
print(rss() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, /proc")
def test_large_blocks_go_back_to_the_os_once_settled() -> None:
    """The protocol fuzzer's RSS growth (proxy.transport.heap): glibc keeps freed 16 MiB blocks
    after the first, unless its mmap threshold is fixed."""

    def held(mode: str) -> float:
        return float(
            subprocess.run(
                [sys.executable, "-c", LARGE_BLOCKS, mode],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parents[2],
            ).stdout
        )

    assert held("default") >= 15  # the allocator's own behaviour: a block kept
    assert held("settled") < 2
