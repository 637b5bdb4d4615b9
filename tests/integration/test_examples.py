"""examples/queries/*.sql run unchanged through the proxy with the `mariadb` CLI, as the
README tells a newcomer to do after `./dev demo`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.churn import model
from examples.churn.schema import FALSE, TRUE
from proxy.cli.demo import DEMO_ENDPOINTS, table_scripts
from proxy.embedded_db import EmbeddedServer, run_sql
from tests.conftest import RunningProxy, start_proxy
from tests.support.backend import BackendInfo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATABASE = "examples_demo"


@pytest.fixture(scope="module")
def example_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    assert backend.server is not None, "needs the embedded server to load the examples"
    server: EmbeddedServer = backend.server
    run_sql(server, f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE};")
    run_sql(server, f"GRANT ALL ON {DATABASE}.* TO 'app'@'%'")
    for path in table_scripts(EXAMPLES):  # what the demo loads, with its endpoint routes
        run_sql(server, path.read_text(encoding="utf-8"), database=DATABASE)
    proxy = start_proxy(backend, endpoint=DEMO_ENDPOINTS)
    yield proxy
    proxy.stop()


def run_cli(proxy: RunningProxy, script: Path) -> str:
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client, "the mariadb client is installed by ./dev"
    command = [client, "--protocol=tcp", "-h", proxy.host, "-P", str(proxy.port)]
    command += ["-u", "app", "-papp-pw", "--batch", DATABASE]
    with script.open("rb") as stdin:
        result = subprocess.run(command, stdin=stdin, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_sentiment_example_runs_unchanged(example_proxy: RunningProxy) -> None:
    output = run_cli(example_proxy, EXAMPLES / "queries" / "sentiment.sql")
    lines = output.splitlines()
    assert lines[0].split("\t") == ["comment_text", "sentiment", "confidence"]
    labels = [line.split("\t")[1] for line in lines[1:6]]
    assert set(labels) <= {"POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"} and len(labels) == 5
    assert "avg_sentiment\ttotal" in lines
    counters = dict(line.split("\t") for line in lines if line.startswith("Aurora_ml_"))
    assert len(counters) == 7
    # Five distinct texts, two functions, two statements: one batch per statement.
    assert int(counters["Aurora_ml_actual_request_cnt"]) >= 1
    assert int(counters["Aurora_ml_logical_request_cnt"]) >= 20


def test_churn_example_runs_unchanged(example_proxy: RunningProxy) -> None:
    lines = run_cli(example_proxy, EXAMPLES / "queries" / "churn.sql").splitlines()
    assert "will_churn\tCOUNT(*)" in lines
    fields = [line.split("\t") for line in lines]
    counts = {row[0]: int(row[1]) for row in fields if len(row) == 2 and row[0] in (TRUE, FALSE)}
    rows, _ = model.load_data()
    assert counts == Counter(model.predict(rows))  # type: ignore[arg-type]
    averages = [row for row in fields if len(row) == 4 and row[0] in (TRUE, FALSE)]
    assert sorted(int(row[3]) for row in averages) == sorted(counts.values())


def readme_tour() -> list[str]:
    """The statements of the README's 30-second tour (its SQL block), comments dropped."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sql\n", 1)[1].split("```", 1)[0]
    code = "\n".join(line for line in block.splitlines() if not line.startswith("--"))
    return [" ".join(s.split()) for s in code.split(";") if s.strip()]


def test_the_readmes_tour_runs_and_quotes_the_example_files(
    example_proxy: RunningProxy,
) -> None:
    """The tour's complete statements run through the proxy as shown; its excerpt of
    CREATE FUNCTION (with ``...``) is the example file's text."""
    statements = readme_tour()
    complete = [s for s in statements if "..." not in s]
    assert complete and len(complete) < len(statements)
    with example_proxy.connect(database=DATABASE) as conn, conn.cursor() as cur:
        for statement in complete:
            cur.execute(statement)
            rows = cur.fetchall()
            assert len(rows) == 5 and {r[1] for r in rows} <= {
                "POSITIVE",
                "NEGATIVE",
                "NEUTRAL",
                "MIXED",
            }
    churn = " ".join((EXAMPLES / "queries" / "churn.sql").read_text(encoding="utf-8").split())
    (excerpt,) = (s for s in statements if s.startswith("CREATE FUNCTION"))
    for clause in re.split(r"[(),]|\.\.\.", excerpt):
        assert clause.strip().lower() in churn.lower(), clause
