"""A constant answer's typed literal (proxy.ml.answers.typed_literal) on the suite's real
server: the form written for this server must give the column the NULLIF form gives (the
form tests/oracle/test_ml_oracle.py checks against stored functions), in a result's
metadata (type, length, decimals, nullability) and in CREATE TABLE ... AS SELECT. On
MariaDB the NULLIF is left out where its CAST is nullable already: that is what this
checks, for every kind of CAST target the proxy writes (the built-ins' and aliases')."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from ml_backends.sentiment import Sentiment
from proxy.ml import answers
from proxy.ml.answers import typed_literal
from rewriter.aliases import alias_function
from rewriter.ddl import AliasFunction, parse_ml_ddl
from rewriter.functions import BUILTINS, MLFunction
from tests.conftest import unique

#: Aliases' RETURNS types, one per kind of CAST target (SqlType.cast_target).
RETURNS = [
    "INT",
    "BIGINT UNSIGNED",
    "DECIMAL(10,2)",
    "DECIMAL",
    "DOUBLE",
    "FLOAT",
    "CHAR(3)",
    "VARCHAR(20) CHARACTER SET latin1",
]


def _alias(returns: str) -> MLFunction:
    ddl = f"CREATE FUNCTION f (x TEXT) RETURNS {returns} ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
    definition = parse_ml_ddl(ddl + " ENDPOINT NAME 'e'")
    assert isinstance(definition, AliasFunction)
    return alias_function(definition, "db")


#: (function, an answer) for each kind: the built-ins' label and confidence, then aliases'.
CASES = [
    (BUILTINS["aws_comprehend_detect_sentiment"], Sentiment("POSITIVE", 0.75)),
    (BUILTINS["aws_comprehend_detect_sentiment_confidence"], Sentiment("POSITIVE", 0.75)),
    (BUILTINS["aws_comprehend_detect_sentiment"], None),
    *((_alias(returns), "42") for returns in RETURNS),
]


def _column(cur: Any, expression: str) -> tuple[Any, ...]:
    """What the server makes of ``expression`` as a column: the result's metadata and
    the column a CREATE TABLE ... AS SELECT makes (with an expression over it)."""
    cur.execute(f"SELECT {expression} AS c")
    cur.fetchall()
    metadata = cur.description[0][1:]
    table = unique()
    cur.execute(f"CREATE TABLE {table} AS SELECT {expression} AS c, COALESCE({expression}) AS d")
    try:
        cur.execute(f"SHOW CREATE TABLE {table}")
        ddl = cur.fetchone()[1]
    finally:
        cur.execute(f"DROP TABLE {table}")
    columns = ddl.split("(", 1)[1].rsplit(")", 1)[0]
    return metadata, " ".join(columns.split())


@pytest.mark.parametrize(
    ("function", "answer"), CASES, ids=[f"{f.cast_type}-{a is None}" for f, a in CASES]
)
def test_the_literal_written_for_this_server_makes_the_nullif_forms_column(
    direct: pymysql.Connection[Any], function: MLFunction, answer: object
) -> None:
    mariadb = "mariadb" in direct.get_server_info().lower()
    value = answers.literal(function, answer)
    reference = f"CAST(NULLIF({value}, NULL) AS {function.cast_type})"
    written = typed_literal(function, answer, mariadb=mariadb)
    with direct.cursor() as cur:
        assert _column(cur, written) == _column(cur, reference), written
