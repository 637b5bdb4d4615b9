"""Endpoint aliases answered by AWS through boto3, end to end: SQL through the proxy, real
boto3 clients, a local service speaking SageMaker's and Bedrock's runtime protocols (with
SigV4 checked and faults injected)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import RunningProxy, private_database, start_proxy, unique
from tests.support.aws_env import fake_aws_env
from tests.support.backend import BackendInfo
from tests.support.fake_aws_ml import FakeAWSML

MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"


def churn_score(rows: list[list[str]]) -> list[str]:
    """The fake endpoint's model: from the CSV fields it received, one line each."""
    return [f"{int(a or 0) * 2 + len(b)}" if a != "" else "" for a, b in rows]


def echo_prompt(body: bytes) -> bytes:
    prompt = json.loads(body)["prompt"]
    return json.dumps({"completion": prompt[::-1]}).encode()


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAWSML]:
    empty = tmp_path_factory.mktemp("aws")
    with fake_aws_env(empty), FakeAWSML(seed=3) as server:
        server.add_endpoint("churn-endpoint", churn_score)
        server.add_model(MODEL_ID, echo_prompt)
        yield server


DB = "mlproxy_aliases_aws"


@pytest.fixture(scope="module")
def schema(backend: BackendInfo) -> Iterator[str]:
    """The module's own database: its tables and functions go with it at the end."""
    with private_database(backend, DB) as name:
        yield name


@pytest.fixture(scope="module")
def aws_proxy(backend: BackendInfo, fake: FakeAWSML, schema: str) -> Iterator[RunningProxy]:
    running = start_proxy(
        backend,
        aws_endpoint_url=fake.url,
        aws_region="us-east-1",
        ml_max_attempts=6,
        endpoint=(f"local-llm={fake.openai_target}",),
    )
    yield running
    running.stop()


@pytest.fixture
def db(aws_proxy: RunningProxy, fake: FakeAWSML) -> Iterator[pymysql.Connection[Any]]:
    fake.reset()
    connection = aws_proxy.connect(database=DB)
    yield connection
    connection.close()


def run(conn: pymysql.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


@pytest.fixture
def people(db: pymysql.Connection[Any]) -> str:
    table = unique("p")
    run(db, f"CREATE TABLE {table} (id INT PRIMARY KEY, a INT, b VARCHAR(40))")
    values = ", ".join(f"({i}, {i % 50}, 'name, \"{i % 7}\"\\n')" for i in range(1, 301))
    run(db, f"INSERT INTO {table} VALUES {values}, (301, NULL, '')")
    return table


def create_scorer(db: pymysql.Connection[Any], name: str, batch: int) -> None:
    run(
        db,
        f"CREATE FUNCTION {name}(a INT, b VARCHAR(40)) RETURNS INT ALIAS "
        f"AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'churn-endpoint' MAX_BATCH_SIZE {batch}",
    )


def test_sagemaker_alias_through_boto3_batches_csv(
    db: pymysql.Connection[Any], fake: FakeAWSML, people: str
) -> None:
    name = unique("churn")
    create_scorer(db, name, batch=100)
    rows = run(db, f"SELECT id, {name}(a, b) FROM {people} ORDER BY id")
    expected = [(i, (i % 50) * 2 + len(f'name, "{i % 7}"\n')) for i in range(1, 301)]
    assert rows == [*expected, (301, None)]
    requests = [r for r in fake.requests if "/endpoints/" in r.path]
    lines = [list(csv.reader(io.StringIO(r.body.decode()))) for r in requests]
    headers = [{k.lower(): v for k, v in r.headers.items()} for r in requests]
    assert all(h["content-type"] == "text/csv" for h in headers)
    assert all(len(batch) <= 100 for batch in lines)
    # 50 x 7 combinations at most, asked once each; the NULL row as an empty field.
    sent = [tuple(row) for batch in lines for row in batch]
    assert len(sent) == len(set(sent)) == len({(i % 50, i % 7) for i in range(1, 301)}) + 1
    assert ("", "") in sent


def test_throttling_is_retried_and_answers_are_identical(
    db: pymysql.Connection[Any], fake: FakeAWSML, people: str
) -> None:
    name = unique("churn")
    create_scorer(db, name, batch=10)
    clean = run(db, f"SELECT id, {name}(a, b) FROM {people} ORDER BY id")
    before = retry_count(db)
    fake.reset(throttle_rate=0.3, throttle_style="alternate")
    run(db, f"DROP FUNCTION {name}")  # a new definition: nothing cached
    create_scorer(db, name, batch=9)
    assert run(db, f"SELECT id, {name}(a, b) FROM {people} ORDER BY id") == clean
    assert fake.count("ThrottlingException") + fake.count(status=400) > 0
    assert retry_count(db) > before


def retry_count(db: pymysql.Connection[Any]) -> int:
    return int(
        dict(run(db, "SHOW STATUS LIKE 'Aurora_ml_retry_request_cnt'"))[
            "Aurora_ml_retry_request_cnt"
        ]
    )


def test_bedrock_alias_through_boto3_one_request_per_row(
    db: pymysql.Connection[Any], fake: FakeAWSML
) -> None:
    name = unique("ask")
    run(
        db,
        f"CREATE FUNCTION {name}(body TEXT) RETURNS TEXT "
        f"ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID '{MODEL_ID}' "
        "CONTENT_TYPE 'application/json' ACCEPT 'application/json'",
    )
    table = unique("q")
    run(db, f"CREATE TABLE {table} (id INT, prompt VARCHAR(40))")
    run(db, f"INSERT INTO {table} VALUES (1, 'abc'), (2, 'hello'), (3, 'abc'), (4, NULL)")
    rows = run(
        db,
        f"SELECT id, JSON_UNQUOTE(JSON_EXTRACT({name}(IF(prompt IS NULL, NULL, "
        f"JSON_OBJECT('prompt', prompt))), '$.completion')) FROM {table} ORDER BY id",
    )
    assert rows == [(1, "cba"), (2, "olleh"), (3, "cba"), (4, None)]
    invocations = [r for r in fake.requests if r.path.startswith("/model/")]
    bodies = sorted(json.loads(r.body)["prompt"] for r in invocations)
    assert bodies == ["abc", "hello"]  # one per distinct body; a NULL body is not sent


def test_a_bedrock_alias_routed_to_an_openai_compatible_server(
    db: pymysql.Connection[Any], fake: FakeAWSML
) -> None:
    fake.chat_model = lambda request: (
        f"{request['model']} says: " + "/".join(m["content"] for m in request["messages"])
    )
    name = unique("ask")
    run(
        db,
        f"CREATE FUNCTION {name}(body TEXT) RETURNS TEXT "
        "ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'local-llm'",
    )
    plain, chat = run(
        db,
        f"SELECT JSON_UNQUOTE(JSON_EXTRACT({name}('hi there'), '$.choices[0].message.content')), "
        f"JSON_UNQUOTE(JSON_EXTRACT({name}(JSON_OBJECT('messages', JSON_ARRAY("
        "JSON_OBJECT('role', 'system', 'content', 'be brief'), "
        "JSON_OBJECT('role', 'user', 'content', 'why?')))), '$.choices[0].message.content'))",
    )[0]
    assert plain == "local-llm says: hi there"  # plain text: the user message
    assert chat == "local-llm says: be brief/why?"  # a chat body: sent as it is
    assert {r.service for r in fake.requests} == {"openai"}
