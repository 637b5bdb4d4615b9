"""The churn example (issue 4): the synthetic data set is reproducible and shaped like the
labs' table, the model predicts what its JSON says, and the SageMaker-style server answers
hostile CSV exactly as the model does, with clear 4xx errors for bad requests."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import http.client
import json
import math
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from examples.churn import generate, model, server
from examples.churn.schema import FALSE, FEATURE_NAMES, N_FEATURES, TRUE
from ml_backends.python_callable import PythonCallableBackend

HERE = Path(generate.__file__).resolve().parent
#: The shipped customers.csv; update together with the file when the generator changes.
CSV_SHA256 = "499781ade134be8c86c97530b4e732e655e5211f0537dc4fc5f79e35bd7b2efe"
RATES = {"day": 0.17, "eve": 0.085, "night": 0.045, "int": 0.27}


@pytest.fixture(scope="module")
def rows() -> list[generate.Row]:
    return generate.generate()


@pytest.fixture(scope="module")
def records() -> list[dict[str, str]]:
    with (HERE / "customers.csv").open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


# --- generator -----------------------------------------------------------------------------


def test_generator_is_deterministic_and_matches_shipped_files(rows: list[generate.Row]) -> None:
    text = generate.to_csv(rows)
    assert text == generate.to_csv(generate.generate())
    assert hashlib.sha256(text.encode()).hexdigest() == CSV_SHA256
    assert (HERE / "customers.csv").read_bytes() == text.encode()
    assert (HERE / "customers.sql").read_text(encoding="utf-8") == generate.to_sql(rows)
    assert generate.to_csv(generate.generate(50, seed=1)) != generate.to_csv(rows[:50])


def test_shape_and_ranges(records: list[dict[str, str]]) -> None:
    assert len(records) == 3333
    assert list(records[0]) == [*FEATURE_NAMES, "churn"]
    assert {r["state"] for r in records} == set(generate.STATES) and len(generate.STATES) == 51
    assert {r["area_code"] for r in records} == {"408", "415", "510"}
    assert len({r["phone"] for r in records}) == len(records)
    for r in records:
        assert (
            len(r["phone"]) == 8 and r["phone"][3] == "-" and r["phone"].replace("-", "").isdigit()
        )
        assert r["int_plan"] in {"yes", "no"} and r["vmail_plan"] in {"yes", "no"}
        assert (int(r["vmail_msg"]) > 0) == (r["vmail_plan"] == "yes")
        assert 0 <= int(r["cust_service_calls"]) <= 9 and int(r["acc_length"]) >= 1
        for period, rate in RATES.items():
            assert float(r[f"{period}_charge"]) == pytest.approx(
                float(r[f"{period}_mins"]) * rate, abs=0.006
            )
        assert r["churn"] in {TRUE, FALSE}


def test_churn_rate_and_signal(records: list[dict[str, str]]) -> None:
    def rate(group: list[dict[str, str]]) -> float:
        return sum(r["churn"] == TRUE for r in group) / len(group)

    assert 0.11 <= rate(records) <= 0.18  # the original: 483/3333 = 14.5%
    with_plan = [r for r in records if r["int_plan"] == "yes"]
    many_calls = [r for r in records if int(r["cust_service_calls"]) >= 4]
    heavy_day = [r for r in records if float(r["day_mins"]) > 260]
    for group in (with_plan, many_calls, heavy_day):
        assert rate(group) > 2 * rate(records)


def test_sql_script_is_small_and_complete(rows: list[generate.Row]) -> None:
    script = generate.to_sql(rows)
    assert len(script.encode()) < 600_000
    assert "CREATE TABLE customers (" in script and "churn VARCHAR(8)" in script
    assert script.count("\n(") == len(rows) and script.count("INSERT INTO customers") == 7
    assert generate._sql_literal("O'Brien\\") == "'O''Brien\\\\'"


# --- model ---------------------------------------------------------------------------------


def _recompute(document: dict[str, object], row: list[str | None]) -> str:
    """The prediction written out from model.json alone, independent of model.py's code."""
    logit = float(document["bias"])  # type: ignore[arg-type]
    for f in document["features"]:  # type: ignore[attr-defined]
        text = row[FEATURE_NAMES.index(f["column"])]
        if not text:
            continue  # missing: the mean, i.e. a standardized 0
        raw = float(text) if f["value"] is None else float(text.lower() == f["value"])
        logit += f["weight"] * (raw - f["mean"]) / f["scale"]
    return TRUE if 1 / (1 + math.exp(-logit)) >= float(document["threshold"]) else FALSE  # type: ignore[arg-type]


def test_predict_agrees_with_model_json(records: list[dict[str, str]]) -> None:
    document = json.loads((HERE / "model.json").read_text(encoding="utf-8"))
    assert len(document["features"]) == 19
    sample: list[list[str | None]] = [[r[name] for name in FEATURE_NAMES] for r in records[:200]]
    sample.append([None] * N_FEATURES)
    sample.append([*sample[0][:7], "", *sample[0][8:]])
    churners = [i for i, answer in enumerate(model.predict(sample)) if answer == TRUE]
    assert churners, "the sample should contain predicted churners too"
    assert model.predict(sample) == [_recompute(document, row) for row in sample]


def test_model_quality_and_retraining_is_deterministic() -> None:
    rows, labels = model.load_data()
    trained = model.train(rows, labels)
    assert trained.to_json() == (HERE / "model.json").read_text(encoding="utf-8")
    report = model.evaluate(trained, rows, labels)
    assert report["accuracy"] > 0.87  # the majority class alone gives 0.857
    assert 100 < report["predicted"][TRUE] < 600


def test_predict_batch_takes_python_values(records: list[dict[str, str]]) -> None:
    as_text: list[list[str | None]] = [[r[name] for name in FEATURE_NAMES] for r in records[:50]]
    typed = [
        tuple(_typed(name, value) for name, value in zip(FEATURE_NAMES, row, strict=True))
        for row in as_text
    ]
    assert model.predict_batch(typed) == model.predict(as_text)
    nulls = (None,) * N_FEATURES
    assert model.predict_batch([nulls]) == model.predict([[None] * N_FEATURES])


def _typed(name: str, value: str | None) -> object:
    """A CSV value as the MySQL driver would hand it over (BIGINT, DOUBLE, DECIMAL)."""
    if value is None or name in {"state", "phone", "int_plan", "vmail_plan"}:
        return value
    if name == "area_code":
        return float(value)  # 408.0 must still count as area code 408
    return Decimal(value) if name.endswith("charge") else float(value)


def test_predict_rejects_bad_rows() -> None:
    with pytest.raises(ValueError, match="row 1: expected 20 values, got 3"):
        model.predict([["a", "b", "c"]])
    bad: list[str | None] = [None] * N_FEATURES
    bad[7] = "lots"
    with pytest.raises(ValueError, match="row 1: day_mins: 'lots' is not a number"):
        model.predict([bad])


# --- HTTP server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, int]]:
    httpd = server.ChurnServer(("127.0.0.1", 0))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _request(
    endpoint: tuple[str, int], method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection(*endpoint, timeout=10)
    try:
        connection.request(
            method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def _hostile_rows(records: list[dict[str, str]]) -> list[list[str | None]]:
    """Real rows with hostile strings where the model ignores them, and NULLs."""
    rows: list[list[str | None]] = [[r[name] for name in FEATURE_NAMES] for r in records[:40]]
    rows[0][0] = 'K"S, "quoted"'
    rows[1][3] = "line one\nline two\r\nthree"
    rows[2][0] = "🦆 émoji, ñ"
    rows[3][4] = None  # int_plan NULL
    rows[4] = [None] * N_FEATURES
    rows[5][7], rows[5][19] = None, None
    rows[6][3] = '",,,"'
    return rows


def _to_csv(rows: list[list[str | None]]) -> bytes:
    """Rows as the proxy sends them: RFC 4180, NULL as an empty field."""
    lines = []
    for row in rows:
        fields = [
            ""
            if v is None
            else '"' + v.replace('"', '""') + '"'
            if any(c in v for c in ',"\r\n')
            else v
            for v in row
        ]
        lines.append(",".join(fields))
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_ping(endpoint: tuple[str, int]) -> None:
    assert _request(endpoint, "GET", "/ping")[0] == 200


def test_invocations_csv_end_to_end(
    endpoint: tuple[str, int], records: list[dict[str, str]]
) -> None:
    rows = _hostile_rows(records)
    status, content_type, body = _request(
        endpoint, "POST", "/invocations", _to_csv(rows), Content_Type="text/csv"
    )
    assert status == 200 and content_type == "text/csv"
    lines = body.decode().splitlines()
    assert len(lines) == len(rows)
    assert lines == model.predict(rows)
    assert set(lines) == {TRUE, FALSE}


def test_invocations_json_accept(endpoint: tuple[str, int], records: list[dict[str, str]]) -> None:
    rows = _hostile_rows(records)[:10]
    status, content_type, body = _request(
        endpoint, "POST", "/invocations", _to_csv(rows),
        Content_Type="text/csv; charset=utf-8", Accept="application/json",
    )  # fmt: skip
    assert status == 200 and content_type == "application/json"
    assert json.loads(body) == {"predictions": model.predict(rows)}


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"a,b", {"Content_Type": "application/json"}, 415, "expected text/csv"),
        (b"a,b", {"Content_Type": "text/csv; charset=latin-1"}, 415, "UTF-8"),
        (b"a,b,c\n", {"Content_Type": "text/csv"}, 400, "row 1: expected 20 fields, got 3"),
        (
            b",,,,,,,,,,,,,,,,,,,\n\n",
            {"Content_Type": "text/csv"},
            400,
            "row 2: expected 20 fields, got 0",
        ),
        (b'"unterminated,' + b"," * 19, {"Content_Type": "text/csv"}, 400, "malformed CSV"),
        (b'a"b"c,"x"y' + b"," * 18, {"Content_Type": "text/csv"}, 400, "malformed CSV"),
        (b"\xff" + b"," * 19, {"Content_Type": "text/csv"}, 400, "not UTF-8"),
        (b"", {"Content_Type": "text/csv"}, 400, "empty body"),
        (
            b",,,,,,,x" + b"," * 12,
            {"Content_Type": "text/csv"},
            400,
            "day_mins: 'x' is not a number",
        ),
        (b"," * 19, {"Content_Type": "text/csv", "Accept": "application/xml"}, 406, "text/csv"),
    ],
)
def test_invocations_errors(
    endpoint: tuple[str, int], body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    got_status, content_type, got_body = _request(endpoint, "POST", "/invocations", body, **headers)
    assert (got_status, content_type.split(";")[0]) == (status, "text/plain")
    assert message in got_body.decode()


def test_unknown_path_is_404(endpoint: tuple[str, int]) -> None:
    assert _request(endpoint, "POST", "/predict", b"x", Content_Type="text/csv")[0] == 404
    assert _request(endpoint, "GET", "/")[0] == 404


def test_accept_negotiation() -> None:
    assert server.response_format(None) == "csv"
    assert server.response_format("application/json;q=0.9, text/csv") == "csv"
    assert server.response_format("text/csv;q=0.5, application/json") == "json"
    assert server.response_format("application/xml, */*;q=0.1") == "csv"


def test_python_backend_spec_loads_predict_batch(records: list[dict[str, str]]) -> None:
    backend = PythonCallableBackend("python:examples.churn.model:predict_batch")
    rows = [tuple(r[name] for name in FEATURE_NAMES) for r in records[:5]]
    answers = asyncio.run(backend.infer(rows))
    assert answers == model.predict([list(row) for row in rows])
