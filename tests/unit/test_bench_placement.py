"""bench.placement: the share of a process's busiest thread's samples on a CPU."""

from __future__ import annotations

import os
import threading
import time

import pytest

from bench.placement import ThreadPlaces


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_the_busiest_thread_is_found_where_it_runs() -> None:
    first, second = sorted(os.sched_getaffinity(0))[:2]
    stop = threading.Event()

    def spin() -> None:
        os.sched_setaffinity(0, {second})  # (this thread only)
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        with (
            ThreadPlaces(os.getpid(), second) as on_second,
            ThreadPlaces(os.getpid(), first) as on_first,
        ):
            time.sleep(0.3)
    finally:
        stop.set()
        spinner.join()
    assert on_second.share is not None and on_second.share > 0.9
    assert on_first.share is not None and on_first.share < 0.1


def test_a_process_that_is_gone_gives_no_share() -> None:
    with ThreadPlaces(2**22 + 12345, 0) as places:  # (no such pid)
        time.sleep(0.02)
    assert places.share is None
