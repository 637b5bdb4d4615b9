"""The ML path's controls, end to end: the request cap, failures (fail or NULL), EXPLAIN,
SHOW/FLUSH STATUS, `mlproxy explain`, and the seed's workload on the local model.

A switchable python: backend (tests.support.switchable_backend) answers deterministically, fails,
or throttles on demand, and records every batch, so tests can prove that a refused
statement made no backend call and left no write half-done.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from ml_backends.local import LocalSentimentBackend
from tests.conftest import TEST_DB, RunningProxy, admin_connect, start_proxy
from tests.integration.test_explain_cli import mlproxy_explain
from tests.support import switchable_backend
from tests.support.backend import BackendInfo

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"
ROWS = 60
SEED = Path(__file__).resolve().parents[2] / "examples" / "comments.sql"


@pytest.fixture(scope="module")
def texts(backend: BackendInfo) -> None:
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS feature_texts")
        cur.execute("CREATE TABLE feature_texts (id INT PRIMARY KEY, txt VARCHAR(100))")
        cur.executemany(
            "INSERT INTO feature_texts VALUES (%s, %s)",
            [(i, f"text {'x' * i}") for i in range(ROWS)],
        )


@pytest.fixture(scope="module")
def ml_proxy(backend: BackendInfo, texts: None) -> Iterator[RunningProxy]:
    proxy = start_proxy(
        backend,
        comprehend_backend=switchable_backend.SETTING,
        ml_max_backend_calls=2,
        ml_cache_entries=0,
        ml_max_attempts=2,
    )
    yield proxy
    proxy.stop()


@pytest.fixture
def conn(ml_proxy: RunningProxy) -> Iterator[pymysql.Connection[Any]]:
    switchable_backend.reset()
    connection = ml_proxy.connect()
    yield connection
    connection.close()
    switchable_backend.reset()


def rows(conn: pymysql.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]


def error_of(conn: pymysql.Connection[Any], sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.err.MySQLError) as caught:
        rows(conn, sql)
    code, message = caught.value.args
    return int(code), str(message)


def test_answers_are_the_backends(conn: pymysql.Connection[Any]) -> None:
    got = rows(conn, f"SELECT txt, {S}(txt, 'en'), {C}(txt, 'en') FROM feature_texts WHERE id < 10")
    assert [(label, conf) for _, label, conf in got] == [
        switchable_backend.answer(t) for t, _, _ in got
    ]


def test_a_statement_over_the_cap_is_refused_before_any_backend_call(
    conn: pymysql.Connection[Any],
) -> None:
    code, message = error_of(
        conn, f"SELECT {S}(txt, 'en') FROM feature_texts"
    )  # 60 texts: 3 requests
    assert code == 1226
    assert "3 backend requests" in message and "limit of 2" in message
    assert switchable_backend.batches == []


def test_the_session_can_raise_its_cap(conn: pymysql.Connection[Any]) -> None:
    rows(conn, "SET @mlproxy_max_backend_calls = 3")
    assert len(rows(conn, f"SELECT {S}(txt, 'en') FROM feature_texts")) == ROWS
    assert len(switchable_backend.batches) == 3


def test_a_failing_backend_fails_the_statement_with_the_function_and_cause(
    conn: pymysql.Connection[Any],
) -> None:
    switchable_backend.mode = "fail"
    code, message = error_of(conn, f"SELECT {S}(txt, 'en') FROM feature_texts WHERE id < 5")
    assert code == 1105
    assert S in message and "model crashed" in message
    assert rows(conn, "SELECT 1") == [(1,)]  # the connection goes on


def test_retries_run_out_into_a_clear_error(conn: pymysql.Connection[Any]) -> None:
    switchable_backend.mode = "unavailable"
    code, message = error_of(conn, f"SELECT {S}(txt, 'en') FROM feature_texts WHERE id < 5")
    assert code == 1105 and "gave up after 2 attempts (HTTP 503" in message
    assert len(switchable_backend.batches) == 2


def test_a_failed_write_leaves_no_row_written(conn: pymysql.Connection[Any]) -> None:
    rows(conn, "CREATE TEMPORARY TABLE written (id INT, lab VARCHAR(8))")
    switchable_backend.mode = "fail"
    error_of(conn, f"INSERT INTO written SELECT id, {S}(txt, 'en') FROM feature_texts WHERE id < 5")
    assert rows(conn, "SELECT COUNT(*) FROM written") == [(0,)]


def test_the_session_can_ask_for_null_instead_of_failure(conn: pymysql.Connection[Any]) -> None:
    rows(conn, "SET @mlproxy_on_error = 'null'")
    switchable_backend.mode = "fail"
    got = rows(conn, f"SELECT id, {S}(txt, 'en') FROM feature_texts WHERE id < 3 ORDER BY id")
    assert got == [(0, None), (1, None), (2, None)]


def test_explain_marks_batched_ml_and_calls_no_backend(conn: pymysql.Connection[Any]) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"EXPLAIN SELECT txt, {S}(txt, 'en') FROM feature_texts WHERE {C}(txt, 'en') > 0.5"
        )
        names = [d[0] for d in cur.description]
        plan = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    assert any("Batched machine learning" in (row["Extra"] or "") for row in plan)
    assert any(row["table"] == "feature_texts" for row in plan)
    assert switchable_backend.batches == []


EXPLAINED = f"SELECT txt, {S}(txt, 'en') FROM feature_texts WHERE id < 5"


def plan_rows(conn: pymysql.Connection[Any], sql: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.mark.parametrize("form", ["EXPLAIN", "EXPLAIN EXTENDED", "EXPLAIN PARTITIONS", "DESCRIBE"])
def test_every_tabular_explain_form_is_marked(
    conn: pymysql.Connection[Any], backend: BackendInfo, form: str
) -> None:
    plan = plan_rows(conn, f"{form} {EXPLAINED}")
    marked = [row for row in plan if "Batched machine learning" in (row["Extra"] or "")]
    assert [row["table"] for row in marked] == ["<batched ml answers>"]
    assert all("_mlr" not in str(value) for row in plan for value in row.values())
    with admin_connect(backend, database=TEST_DB) as direct:
        plain = plan_rows(direct, f"{form} SELECT txt FROM feature_texts WHERE id < 5")
    assert set(plain[0]) == set(plan[0])  # the form's own columns, as the server gives them
    assert switchable_backend.batches == []


@pytest.mark.parametrize("form", ["EXPLAIN FORMAT=JSON", "ANALYZE FORMAT=JSON"])
def test_json_explain_forms_are_marked(conn: pymysql.Connection[Any], form: str) -> None:
    (row,) = plan_rows(conn, f"{form} {EXPLAINED}")
    (document,) = row.values()
    plan = json.loads(document)
    assert plan["query_block"]["batched_machine_learning"] is True
    assert "_mlr" not in document
    runs = form.startswith("ANALYZE")  # it runs the statement: with its real answers
    assert len(switchable_backend.batches) == (1 if runs else 0)


def test_analyze_runs_the_statement_with_its_answers_and_is_marked(
    conn: pymysql.Connection[Any],
) -> None:
    """Five distinct inputs: the answers are written into the statement (no lookup
    table), so the row the inputs come from carries the mark."""
    plan = plan_rows(conn, f"ANALYZE {EXPLAINED}")
    assert plan[0]["table"] == "feature_texts"
    assert "Batched machine learning" in plan[0]["Extra"]
    assert plan[0]["r_rows"] is not None  # ANALYZE's own columns: the statement ran
    assert [len(batch) for batch in switchable_backend.batches] == [5]


def test_analyze_table_is_left_to_the_server(conn: pymysql.Connection[Any]) -> None:
    got = rows(conn, "ANALYZE TABLE feature_texts")
    assert got[0][2] == "status"


def status(conn: pymysql.Connection[Any], scope: str = "SESSION") -> dict[str, int]:
    found = rows(conn, f"SHOW {scope} STATUS LIKE 'Aurora_ml%'")
    return {name: int(value) for name, value in found}


def test_status_counts_and_flush_status_resets(
    conn: pymysql.Connection[Any], ml_proxy: RunningProxy, backend: BackendInfo
) -> None:
    with pymysql.connect(
        host=ml_proxy.host,
        port=ml_proxy.port,
        user=backend.admin_user,  # the global counters need PROCESS: the admin has it
        password=backend.admin_password,
    ) as admin:
        before, global_before = status(conn), status(admin, "GLOBAL")
        rows(conn, f"SELECT {S}(txt, 'en'), {C}(txt, 'en') FROM feature_texts WHERE id < 10")
        for scope, (old, new) in {
            "session": (before, status(conn)),
            "global": (global_before, status(admin, "GLOBAL")),
        }.items():
            assert new["Aurora_ml_actual_request_cnt"] - old["Aurora_ml_actual_request_cnt"] == 1
            assert new["Aurora_ml_logical_request_cnt"] - old["Aurora_ml_logical_request_cnt"] == 20
            assert new["Aurora_ml_cache_hit_cnt"] - old["Aurora_ml_cache_hit_cnt"] == 10, scope
        rows(admin, "FLUSH STATUS")  # needs RELOAD: the admin has it
        assert set(status(admin, "GLOBAL").values()) == {0}
        assert set(status(admin).values()) == {0}
    assert error_of(conn, "FLUSH STATUS")[0] == 1227  # APP lacks RELOAD: nothing reset
    assert status(conn)["Aurora_ml_logical_request_cnt"] >= 20


def test_mlproxy_explain_prints_the_rewrite_and_the_cost(backend: BackendInfo, texts: None) -> None:
    sql = f"SELECT {S}(txt, 'en') FROM feature_texts WHERE id < 30"
    output = mlproxy_explain(backend, sql)
    # 30 distinct inputs go inline, as the run writes them (tests/integration/test_explain_cli.py)
    assert "CAST(ELT(FIELD(" in output and "_mlproxy_ml_" not in output
    assert "SELECT DISTINCT" in output
    assert "2 request(s) for 30 distinct input(s)" in output


def sql_statements(script: str) -> list[str]:
    """The statements of a simple SQL file: comment lines dropped, split at semicolons."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


SEED_SELECT = f"SELECT comment_text, {S}(comment_text, 'en'), {C}(comment_text, 'en') FROM comments"
SEED_AVERAGE = (
    f"SELECT AVG(CASE {S}(comment_text, 'en') WHEN 'POSITIVE' THEN 1.0 WHEN 'NEGATIVE' THEN -1.0 "
    f"ELSE 0.0 END), COUNT(*) FROM comments WHERE {C}(comment_text, 'en') >= 0.80"
)


def test_the_seed_workload_on_the_local_model(backend: BackendInfo) -> None:
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS comments")
        for statement in sql_statements(SEED.read_text(encoding="utf-8")):
            cur.execute(statement)
    proxy = start_proxy(backend)  # comprehend_backend defaults to local
    try:
        with proxy.connect() as conn:
            got = rows(conn, SEED_SELECT)
            ((average, total),) = rows(conn, SEED_AVERAGE)
    finally:
        proxy.stop()
    model = LocalSentimentBackend()
    assert len(got) == 5
    assert got == [(text, *model.score(text)) for text, _, _ in got]
    confident = [label for _, label, confidence in got if confidence >= 0.80]
    assert total == len(confident)
    score = {"POSITIVE": 1, "NEGATIVE": -1}
    assert float(average) == pytest.approx(
        sum(score.get(x, 0) for x in confident) / total, abs=1e-4
    )
