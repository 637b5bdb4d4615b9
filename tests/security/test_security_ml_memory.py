"""What ML statements may hold in the proxy (issue 10, item 4): key rows and answers are
counted against ml_statement_memory and ml_memory as they arrive, answers are checked
against the function's type before they are kept, the shared cache is bounded in bytes,
and a statement over many rows does not hold up other sessions.

Rows come from MariaDB's sequence tables (seq_1_to_N); models are tests/support/hostile_models.py.
Memory is measured with tracemalloc (the proxy runs in this process, on its own thread).
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymysql
import pytest

from ml_backends.cache import ResultCache
from proxy.ml.memory import ADMIT_BELOW, ER_OUT_OF_RESOURCES, row_cost
from tests.conftest import RunningProxy, start_proxy
from tests.support import hostile_models
from tests.support.backend import BackendInfo

MODELS = "python:tests.support.hostile_models:"
MiB = 1 << 20
BUDGET = 8 * MiB
ROUTES = (
    f"instant-ep={MODELS}instant",
    f"big-model={MODELS}big",
    f"nothing-ep={MODELS}nothing",
    f"blocking-ep={MODELS}blocking",
)
FUNCTIONS = {
    "mem_len": "(t VARCHAR(50)) RETURNS INT "
    "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'instant-ep'",
    "mem_none": "(t INT) RETURNS INT "
    "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'nothing-ep'",
    "mem_block": "(t INT) RETURNS INT "
    "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'blocking-ep'",
    "mem_big_text": "(t TEXT) RETURNS TEXT ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'big-model'",
    "mem_big_long": "(t TEXT) RETURNS LONGTEXT ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'big-model'",
}


def memory_proxy(backend: BackendInfo, **settings: Any) -> RunningProxy:
    """A proxy with the test's models and functions (ml_cache_entries=0: every statement
    asks its model)."""
    running = start_proxy(backend, endpoint=ROUTES, ml_cache_entries=0, **settings)
    with running.connect() as conn, conn.cursor() as cur:
        for name, definition in FUNCTIONS.items():
            cur.execute(f"DROP FUNCTION IF EXISTS {name}")
            cur.execute(f"CREATE FUNCTION {name}{definition}")
    return running


@pytest.fixture(scope="module")
def small_budget(backend: BackendInfo) -> Iterator[RunningProxy]:
    running = memory_proxy(backend, ml_statement_memory=BUDGET)
    yield running
    running.stop()


def rows(conn: pymysql.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def error_of(conn: pymysql.Connection[Any], sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.MySQLError) as caught:
        rows(conn, sql)
    code, message = caught.value.args
    return code, message


def peak_growth(run: Callable[[], object]) -> int:
    """Bytes allocated at the peak of ``run`` beyond what was held before it (every
    thread's, the proxy's included)."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


# --- one statement ---------------------------------------------------------------------


def test_key_rows_past_the_statement_budget_are_refused_with_1041(
    small_budget: RunningProxy,
) -> None:
    with small_budget.connect() as conn:
        got: list[tuple[int, str]] = []
        grew = peak_growth(
            lambda: got.append(
                error_of(conn, "SELECT MAX(mem_len(CONCAT('row ', seq))) FROM seq_1_to_200000")
            )
        )
        ((code, message),) = got
        assert code == ER_OUT_OF_RESOURCES and "ml_statement_memory" in message
        assert grew < 3 * BUDGET, f"{grew / MiB:.1f} MiB held for a {BUDGET // MiB} MiB budget"
        # The key query was read to its end: the session goes on, ML statements too.
        assert rows(conn, "SELECT 1") == [(1,)]
        assert rows(conn, "SELECT MAX(mem_len(CONCAT('row ', seq))) FROM seq_1_to_2000") == [(8,)]


def test_statement_within_budget_holds_about_what_it_counts(small_budget: RunningProxy) -> None:
    """The estimate is not far below what Python really holds: a statement allowed to run
    up to its budget stays within twice the budget."""
    count = BUDGET // row_cost(12) * 9 // 10  # about 90% of the budget in key rows
    sql = f"SELECT MAX(mem_len(CONCAT('row ', seq))) FROM seq_1_to_{count}"
    with small_budget.connect() as conn:
        got: list[list[tuple[Any, ...]]] = []
        grew = peak_growth(lambda: got.append(rows(conn, sql)))
        assert got == [[(4 + len(str(count)),)]]
        assert grew < 2 * BUDGET, f"{grew / MiB:.1f} MiB held for a {BUDGET // MiB} MiB budget"


def test_answers_longer_than_the_return_type_are_refused_before_they_are_kept(
    small_budget: RunningProxy,
) -> None:
    with small_budget.connect() as conn:
        got: list[tuple[int, str]] = []
        grew = peak_growth(
            lambda: got.append(error_of(conn, "SELECT mem_big_text(seq) FROM seq_1_to_200"))
        )
        ((code, message),) = got
        assert code == 1105 and "mem_big_text" in message and "longer than TEXT" in message
        assert grew < 3 * BUDGET
        assert rows(conn, "SELECT 1") == [(1,)]


def test_answers_past_the_statement_budget_are_refused_with_1041(
    small_budget: RunningProxy,
) -> None:
    """200 answers of 1 MB to a LONGTEXT function: the type holds them, the budget not."""
    with small_budget.connect() as conn:
        got: list[tuple[int, str]] = []
        grew = peak_growth(
            lambda: got.append(error_of(conn, "SELECT mem_big_long(seq) FROM seq_1_to_200"))
        )
        ((code, message),) = got
        assert code == ER_OUT_OF_RESOURCES and "ml_statement_memory" in message
        assert grew < 3 * BUDGET, f"{grew / MiB:.1f} MiB held for a {BUDGET // MiB} MiB budget"
        assert rows(conn, "SELECT LENGTH(mem_big_long(1))") == [(MiB,)]


def test_the_shared_cache_is_bounded_in_bytes() -> None:
    cache = ResultCache(max_entries=100_000, max_bytes=4 * MiB)
    answer = "z" * (64 << 10)
    for i in range(500):
        cache.put(("f", (f"input {i}",)), answer + str(i))
        assert cache.bytes <= 4 * MiB
    assert 0 < len(cache) < 70
    assert cache.get(("f", ("input 499",))) == (True, answer + "499")
    cache.put(("f", ("huge",)), "h" * MiB)  # over an eighth of the bound: not kept
    assert cache.get(("f", ("huge",))) == (False, None)


# --- the process -----------------------------------------------------------------------

HELD_ROWS = 1000


def held_bytes() -> int:
    """What mem_block over seq_1_to_HELD_ROWS holds while its model blocks: its key rows
    (each a payload of a length byte and the number's digits)."""
    return sum(row_cost(1 + len(str(i))) for i in range(1, HELD_ROWS + 1))


@pytest.fixture
def process_budget(backend: BackendInfo) -> Iterator[RunningProxy]:
    """ml_memory just above one blocked statement's key rows and NULL answers: that
    statement fits, and while it runs the process is past ADMIT_BELOW of its budget."""
    limit = held_bytes() + 16 * HELD_ROWS + 20_000
    assert held_bytes() >= ADMIT_BELOW * limit
    running = memory_proxy(backend, ml_memory=limit, ml_memory_wait=0.5)
    hostile_models.RELEASE.clear()
    yield running
    hostile_models.RELEASE.set()
    running.stop()


def blocked_statement(proxy: RunningProxy) -> Callable[[], list[tuple[Any, ...]]]:
    def run() -> list[tuple[Any, ...]]:
        with proxy.connect() as conn:
            return rows(conn, f"SELECT COUNT(mem_block(seq)) FROM seq_1_to_{HELD_ROWS}")

    return run


def test_new_statement_waits_for_process_memory_then_is_refused_with_1041(
    process_budget: RunningProxy,
) -> None:
    with ThreadPoolExecutor(1) as pool:
        blocked = pool.submit(blocked_statement(process_budget))
        time.sleep(0.5)  # the blocked statement reads its key rows, then its model waits
        with process_budget.connect() as conn:
            started = time.monotonic()
            code, message = error_of(conn, "SELECT mem_none(seq) FROM seq_1_to_3")
            waited = time.monotonic() - started
            assert code == ER_OUT_OF_RESOURCES and "ml_memory" in message
            assert 0.4 < waited < 3
            hostile_models.RELEASE.set()
            assert blocked.result(30) == [(0,)]
            # Released: ML statements run again.
            assert rows(conn, "SELECT mem_none(seq) FROM seq_1_to_3") == [(None,)] * 3


def test_new_statement_waiting_for_process_memory_runs_once_it_is_released(
    process_budget: RunningProxy,
) -> None:
    with ThreadPoolExecutor(2) as pool:
        blocked = pool.submit(blocked_statement(process_budget))
        time.sleep(0.5)

        def waiting() -> list[tuple[Any, ...]]:
            with process_budget.connect() as conn:
                return rows(conn, "SELECT mem_none(seq) FROM seq_1_to_3")

        later = pool.submit(waiting)
        time.sleep(0.2)
        assert not later.done()  # it waits for memory
        hostile_models.RELEASE.set()
        assert later.result(30) == [(None,)] * 3
        assert blocked.result(30) == [(0,)]


# --- other sessions --------------------------------------------------------------------


@pytest.fixture(scope="module")
def large_budget(backend: BackendInfo) -> Iterator[RunningProxy]:
    running = memory_proxy(backend, ml_statement_memory=512 * MiB)
    yield running
    running.stop()


def test_other_sessions_are_served_while_many_key_rows_are_read(
    large_budget: RunningProxy,
) -> None:
    """200,000 distinct inputs read, decoded, keyed and stored: SELECT 1 on another
    connection keeps answering within a fraction of a second (1.73 s before, on a loaded
    2-core machine; about 0.1 s since)."""
    done = threading.Event()
    waits: list[float] = []

    def ping() -> None:
        with large_budget.connect() as other:
            while not done.is_set():
                started = time.monotonic()
                rows(other, "SELECT 1")
                waits.append(time.monotonic() - started)
                time.sleep(0.005)

    with ThreadPoolExecutor(1) as pool:
        pinging = pool.submit(ping)
        try:
            with large_budget.connect() as conn:
                got = rows(conn, "SELECT MAX(mem_len(CONCAT('row ', seq))) FROM seq_1_to_200000")
        finally:
            done.set()
        pinging.result(30)
    assert got == [(10,)]
    assert len(waits) > 10
    assert max(waits) < 0.5, f"SELECT 1 waited up to {max(waits):.2f} s"
