"""The seed talk's churn statements (examples/queries/churn.sql) run unchanged through the
proxy, with 'tuning-job-123' routed to the example's model in-process and to its
SageMaker-compatible HTTP server; both must give, row for row, what the model says when
applied directly in Python to the CSV the table was generated from (the oracle)."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from examples.churn import model, server
from examples.churn.schema import FALSE, FEATURE_COLUMNS, FEATURE_NAMES, TRUE
from proxy.cli.demo import DEMO_ENDPOINTS
from rewriter.ddl import AliasFunction, parse_ml_ddl
from tests.conftest import APP, RunningProxy, admin_connect, start_proxy
from tests.support.backend import BackendInfo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHURN_SQL = EXAMPLES / "queries" / "churn.sql"
DATABASE = "churn_e2e"


def statements(path: Path) -> list[str]:
    """The file's statements, text as written (comment lines dropped, split at a ``;``
    that ends a line; the example has no ``;`` inside strings)."""
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("--")
    ]
    parts = re.split(r";[ \t]*\n", "\n".join(lines) + "\n")
    return [part.strip() for part in parts if part.strip()]


@pytest.fixture(scope="module")
def customers(backend: BackendInfo) -> Iterator[None]:
    """The example's customers table in a database of its own, loaded from the same
    customers.sql the demo loads."""
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
        cur.execute(f"GRANT ALL ON {DATABASE}.* TO '{APP.user}'@'%'")
        cur.execute(f"USE {DATABASE}")
        for statement in statements(EXAMPLES / "churn" / "customers.sql"):
            cur.execute(statement)
    yield
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")


@pytest.fixture(scope="module")
def oracle() -> dict[str, str]:
    """phone -> the model's answer, straight from customers.csv (phones are unique)."""
    rows, _ = model.load_data()
    phone = FEATURE_NAMES.index("phone")
    answers = model.predict(rows)  # type: ignore[arg-type]
    return {row[phone]: answer for row, answer in zip(rows, answers, strict=True)}


@pytest.fixture(scope="module")
def http_endpoint() -> Iterator[str]:
    httpd = server.ChurnServer(("127.0.0.1", 0))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@dataclass(frozen=True)
class ChurnRun:
    """What running churn.sql through one proxy gave."""

    target: str
    results: list[tuple[tuple[Any, ...], ...]]
    ctas_seconds: float
    scored: dict[str, str]  # phone -> will_churn, read back from customers_churn
    column: tuple[str, str]  # will_churn's COLUMN_TYPE and CHARACTER_SET_NAME


@pytest.fixture(scope="module", params=["in-process", "http"])
def churn_run(request: pytest.FixtureRequest, backend: BackendInfo, customers: None) -> ChurnRun:
    """churn.sql run once per target: 'tuning-job-123' routed as the demo routes it, or
    to the example's HTTP server."""
    if request.param == "http":
        routes = (f"tuning-job-123={request.getfixturevalue('http_endpoint')}",)
    else:
        routes = DEMO_ENDPOINTS
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {DATABASE}.customers_churn")  # score afresh
    running = start_proxy(backend, endpoint=routes)
    try:
        results, seconds = run_file(running)
    finally:
        running.stop()
    print(f"\nchurn.sql via {request.param}: CTAS of 3,333 rows took {seconds:.2f} s")
    with admin_connect(backend, database=DATABASE) as conn, conn.cursor() as cur:
        cur.execute("SELECT phone, will_churn FROM customers_churn")
        scored = dict(cur.fetchall())
        cur.execute(
            "SELECT COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE "
            f"TABLE_SCHEMA = '{DATABASE}' AND TABLE_NAME = 'customers_churn' "
            "AND COLUMN_NAME = 'will_churn'"
        )
        (column,) = cur.fetchall()
    return ChurnRun(request.param, results, seconds, scored, column)


def run_file(proxy: RunningProxy) -> tuple[list[Any], float]:
    """Every statement of churn.sql, in order, on one connection: the results, and the
    seconds the CREATE TABLE ... AS SELECT took."""
    results: list[Any] = []
    ctas = float("nan")
    with proxy.connect(database=DATABASE) as conn, conn.cursor() as cur:
        for statement in statements(CHURN_SQL):
            started = time.perf_counter()
            cur.execute(statement)
            if statement.startswith("CREATE TABLE"):
                ctas = time.perf_counter() - started
            results.append(cur.fetchall())
    return results, ctas


def test_the_file_holds_the_seeds_statements() -> None:
    found = statements(CHURN_SQL)
    assert [s.splitlines()[0] for s in found] == [
        "DROP FUNCTION IF EXISTS will_churn",
        "CREATE FUNCTION will_churn (",
        "CREATE TABLE IF NOT EXISTS customers_churn AS",
        "SELECT * FROM customers_churn LIMIT 7",
        "SELECT will_churn, COUNT(*) FROM customers_churn GROUP BY will_churn",
        "SELECT will_churn,",
    ]
    function = parse_ml_ddl(found[1])
    assert isinstance(function, AliasFunction) and function.endpoint == "tuning-job-123"
    assert function.returns == "VARCHAR(2048) CHARSET utf8mb4"
    declared = [(a.name, a.sql_type.replace("(20)", "")) for a in function.args]
    assert declared == list(FEATURE_COLUMNS)  # the order and types the model reads
    call = re.search(r"will_churn\((.*?)\) will_churn", found[2], re.S)
    assert call is not None
    assert tuple(arg.strip() for arg in call.group(1).split(",")) == FEATURE_NAMES


def test_counts_are_the_models(churn_run: ChurnRun, oracle: dict[str, str]) -> None:
    expected = Counter(oracle.values())
    counts = dict(churn_run.results[4])
    print(f"\n{churn_run.target}: {counts}; the model directly: {dict(expected)}")
    assert counts == {TRUE: expected[TRUE], FALSE: expected[FALSE]}
    assert expected[TRUE] > 100 and sum(expected.values()) == 3333


def test_every_row_is_the_models_answer(churn_run: ChurnRun, oracle: dict[str, str]) -> None:
    assert churn_run.scored == oracle
    sample = churn_run.results[3]
    assert len(sample) == 7 and all(row[-1] in (TRUE, FALSE) for row in sample)
    assert all(oracle[row[FEATURE_NAMES.index("phone")]] == row[-1] for row in sample)


def test_group_averages_are_the_csvs(churn_run: ChurnRun) -> None:
    check_averages(churn_run.results[5])


def test_ctas_column_has_the_declared_type(
    churn_run: ChurnRun, backend: BackendInfo, request: pytest.FixtureRequest
) -> None:
    """Aurora's will_churn is a stored function, so CTAS makes its column VARCHAR(2048)."""
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        (version,) = cur.fetchone() or ("",)
    if "mariadb" in version.lower():
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="known gap on MariaDB: the proxy replaces the call by CAST(... AS "
                "CHAR(2048)), and MariaDB's CREATE TABLE ... AS SELECT makes any expression "
                "over 512 characters (CONVERT_IF_BIGGER_TO_BLOB) a TEXT column; only a real "
                "stored function or a column keeps VARCHAR(2048)",
            )
        )
    assert churn_run.column == ("varchar(2048)", "utf8mb4")


def check_averages(rows: tuple[tuple[Any, ...], ...]) -> None:
    """The last statement's per-group averages, against the CSV grouped by the oracle."""
    data, _ = model.load_data()
    predicted = model.predict(data)  # type: ignore[arg-type]
    index = {name: FEATURE_NAMES.index(name) for name in ("acc_length", "cust_service_calls")}
    for label, avg_length, avg_calls, count in rows:
        group = [r for r, answer in zip(data, predicted, strict=True) if answer == label]
        assert count == len(group)
        for name, got in (("acc_length", avg_length), ("cust_service_calls", avg_calls)):
            mean = sum(Decimal(r[index[name]]) for r in group) / len(group)
            assert abs(Decimal(got) - Decimal(mean)) < Decimal("0.0001"), (label, name)


def test_rerunning_the_file_keeps_the_cached_table(
    backend: BackendInfo, customers: None, oracle: dict[str, str]
) -> None:
    """CREATE TABLE IF NOT EXISTS: a second run keeps the scored table (the slide's
    caching) and the DROP FUNCTION at the top lets CREATE FUNCTION run again."""
    running = start_proxy(backend, endpoint=DEMO_ENDPOINTS)
    try:
        first, _ = run_file(running)
        with admin_connect(backend, database=DATABASE) as conn, conn.cursor() as cur:
            cur.execute("UPDATE customers_churn SET will_churn = 'kept' LIMIT 1")
        second, _ = run_file(running)
        assert dict(second[4]).get("kept") == 1
        assert sum(dict(first[4]).values()) == sum(dict(second[4]).values()) == len(oracle)
    finally:
        running.stop()
        with admin_connect(backend) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {DATABASE}.customers_churn")
