"""`mlproxy explain` shows the statement the proxy would actually send (issue 16).

Each statement runs through a proxy while the backend's general log records what it is
sent; the rewritten statement `mlproxy explain` printed beforehand must be that statement,
its unknown answers (``<answer>``) standing for the literals the model's answers became.
The forms are the run's: few distinct inputs inline, many in a lookup table, a constant
call as a literal.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from proxy.ml.answers import INLINE_MAX_ANSWERS
from tests.conftest import TEST_DB, RunningProxy, admin_connect, start_proxy
from tests.support.backend import BackendInfo

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"
#: A SQL literal an answer is written as: (introduced) quoted text or hex, a number, NULL.
ANSWER_LITERAL = r"(?:(?:_\w+ )?(?:'(?:[^'\\]|\\.|'')*'|X'[0-9A-Fa-f]*')|-?[0-9][0-9.eE+-]*|NULL)"


@pytest.fixture(scope="module")
def tables(backend: BackendInfo) -> None:
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        for name, count in (("explain_small", 5), ("explain_large", INLINE_MAX_ANSWERS + 44)):
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, txt VARCHAR(100))")
            cur.executemany(
                f"INSERT INTO {name} VALUES (%s, %s)",
                [(i, f"review {i}: {'great' if i % 2 else 'awful'}") for i in range(count)],
            )


@pytest.fixture(scope="module")
def local_proxy(backend: BackendInfo, tables: None) -> Iterator[RunningProxy]:
    proxy = start_proxy(backend, ml_cache_entries=0)  # the offline local model
    yield proxy
    proxy.stop()


def mlproxy_explain(backend: BackendInfo, sql: str) -> str:
    """What `mlproxy explain` prints for ``sql`` against the test database (it succeeds)."""
    url = f"mysql://{backend.admin_user}:{backend.admin_password}@{backend.host}:{backend.port}/{TEST_DB}"
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "explain", "--backend", url, sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def explained(backend: BackendInfo, sql: str) -> str:
    """The rewritten statement `mlproxy explain` prints."""
    lines = mlproxy_explain(backend, sql).splitlines()
    return lines[lines.index("Rewritten statement:") + 1].strip()


def sent_to_backend(backend: BackendInfo, proxy: RunningProxy, sql: str) -> str:
    """The last statement the proxy's backend connection ran for ``sql`` (the client's
    rewritten statement: key queries and lookup tables come before it), from the
    backend's general log."""
    marker = f"mark-{uuid.uuid4().hex}"
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute("SET GLOBAL log_output = 'TABLE'")
        cur.execute("SET GLOBAL general_log = 1")
        try:
            with proxy.connect() as conn, conn.cursor() as client:
                client.execute(f"SELECT '{marker}'")
                client.execute(sql)
                client.fetchall()
        finally:
            cur.execute("SET GLOBAL general_log = 0")
        cur.execute(
            "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log"
            " WHERE command_type = 'Query' AND thread_id = (SELECT thread_id FROM"
            " mysql.general_log WHERE argument = %s LIMIT 1)",
            (f"SELECT '{marker}'",),
        )
        queries: list[Any] = [row[0] for row in cur.fetchall()]
    # (the log may hold an earlier connection with the same thread id)
    return str(queries[-1 - queries[::-1].index(f"SELECT '{marker}'") :][-1])


def as_pattern(explain_text: str) -> re.Pattern[str]:
    """The explained statement as a pattern: each ``<answer>`` any answer's literal."""
    return re.compile(ANSWER_LITERAL.join(re.escape(p) for p in explain_text.split("<answer>")))


CASES = {
    "few inputs: inline": (f"SELECT id, {S}(txt, 'en') FROM explain_small", "ELT(FIELD("),
    "many inputs: a table": (
        f"SELECT id, {C}(txt, 'en') FROM explain_large WHERE id > 3",
        "_mlproxy_ml_0",
    ),
    # (the answer's typed literal: CAST(NULLIF(...)), without NULLIF on MariaDB)
    "a constant call": (f"SELECT {S}('I love this', 'en') AS label", "SELECT CAST("),
}


@pytest.mark.parametrize("case", CASES)
def test_explain_prints_the_statement_the_proxy_sends(
    backend: BackendInfo, local_proxy: RunningProxy, case: str
) -> None:
    sql, form = CASES[case]
    printed = explained(backend, sql)
    assert form in printed  # the form the run chooses for this many inputs
    assert ("_mlproxy_ml_" in printed) == (form == "_mlproxy_ml_0")
    sent = sent_to_backend(backend, local_proxy, sql)
    assert form in sent and ("_mlproxy_ml_" in sent) == ("_mlproxy_ml_" in printed)
    assert as_pattern(printed).fullmatch(sent), f"explained:\n{printed}\nsent:\n{sent}"


def test_the_call_sites_say_their_form(backend: BackendInfo, tables: None) -> None:
    url = f"mysql://{backend.admin_user}:{backend.admin_password}@{backend.host}:{backend.port}/{TEST_DB}"
    sql = (
        f"SELECT {S}(s.txt, 'en'), {S}(l.txt, 'en') FROM explain_small s"
        " JOIN explain_large l ON l.id = s.id + 0 * 0"
    )
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "explain", "--backend", url, sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sites = [line for line in result.stdout.splitlines() if line.startswith("  #")]
    assert len(sites) == 2
    assert all(line.endswith("answers inline") for line in sites), sites
    assert re.search(r"ELT\(FIELD\(.*ELT\(FIELD\(", result.stdout)
