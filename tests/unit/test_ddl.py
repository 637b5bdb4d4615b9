"""Golden tests for rewriter.ddl: Aurora's ML DDL (CREATE FUNCTION ... ALIAS, DROP FUNCTION)."""

from __future__ import annotations

import doctest
from dataclasses import replace
from typing import Any

import pytest

import rewriter.ddl
from rewriter.ddl import AliasFunction, Argument, DropFunction, looks_like_ml_ddl, parse_ml_ddl
from rewriter.errors import PlanError

#: Slide 16 of the seed talk, verbatim but for its last quote: the slide closes the
#: endpoint name with a typographic quote, U+2019 (see SEED_AS_PRINTED).
SEED_WILL_CHURN = """CREATE FUNCTION will_churn (
state varchar(2048),
acc_length bigint(20),
area_code bigint(20), phone varchar(2048),
int_plan varchar(2048),
vmail_plan varchar(2048), vmail_msg bigint(20),
day_mins double, day_calls bigint(20), day_charge double,
eve_mins double, eve_calls bigint(20), eve_charge double,
night_mins double, night_calls bigint(20), night_charge double,
int_mins double, int_calls bigint(20), int_charge double,
cust_service_calls bigint(20))
RETURNS varchar(2048) CHARSET utf8mb4
alias aws_sagemaker_invoke_endpoint
endpoint name 'tuning-job-123';"""
SEED_AS_PRINTED = SEED_WILL_CHURN.replace("123';", "123\u2019;")

_V = "VARCHAR(2048)"
_B = "BIGINT(20)"
_D = "DOUBLE"
SEED_ARGS = tuple(
    Argument(name, sql_type)
    for name, sql_type in [
        ("state", _V),
        ("acc_length", _B),
        ("area_code", _B),
        ("phone", _V),
        ("int_plan", _V),
        ("vmail_plan", _V),
        ("vmail_msg", _B),
        ("day_mins", _D),
        ("day_calls", _B),
        ("day_charge", _D),
        ("eve_mins", _D),
        ("eve_calls", _B),
        ("eve_charge", _D),
        ("night_mins", _D),
        ("night_calls", _B),
        ("night_charge", _D),
        ("int_mins", _D),
        ("int_calls", _B),
        ("int_charge", _D),
        ("cust_service_calls", _B),
    ]
)


def sagemaker(name: str, args: tuple[Argument, ...], returns: str, **kw: Any) -> AliasFunction:
    fields: dict[str, Any] = dict(
        schema=None,
        name=name,
        args=args,
        returns=returns,
        kind="sagemaker",
        endpoint=None,
        model_id=None,
        max_batch_size=10000,
        content_type=None,
        accept=None,
        timeout_ms=None,
        definer=None,
        security=None,
    )
    return AliasFunction(**(fields | kw))


def bedrock(name: str, arg: Argument, returns: str, **kw: Any) -> AliasFunction:
    defaults = dict(kind="bedrock", max_batch_size=1, content_type="application/json") | dict(
        accept="application/json"
    )
    return sagemaker(name, (arg,), returns, **(defaults | kw))


#: (DDL, expected AliasFunction, expected canonical sql).
GOLDEN: list[tuple[str, AliasFunction, str]] = [
    (
        SEED_WILL_CHURN,
        sagemaker(
            "will_churn", SEED_ARGS, "VARCHAR(2048) CHARSET utf8mb4", endpoint="tuning-job-123"
        ),
        "CREATE FUNCTION `will_churn`("
        + ", ".join(f"`{a.name}` {a.sql_type}" for a in SEED_ARGS)
        + ") RETURNS VARCHAR(2048) CHARSET utf8mb4 ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'tuning-job-123' MAX_BATCH_SIZE 10000",
    ),
    (
        """CREATE FUNCTION mldb.classify (f1 DOUBLE, f2 DECIMAL(10, 2), f3 VARCHAR(64))
          DEFINER = 'admin'@'%'
          RETURNS VARCHAR(32) CHARSET utf8mb4 COLLATE utf8mb4_bin
          SQL SECURITY INVOKER
          ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT
          ENDPOINT NAME 'my-endpoint'
          MAX_BATCH_SIZE 500;""",
        sagemaker(
            "classify",
            (
                Argument("f1", "DOUBLE"),
                Argument("f2", "DECIMAL(10,2)"),
                Argument("f3", "VARCHAR(64)"),
            ),
            "VARCHAR(32) CHARSET utf8mb4 COLLATE utf8mb4_bin",
            schema="mldb",
            endpoint="my-endpoint",
            max_batch_size=500,
            definer="`admin`@`%`",
            security="INVOKER",
        ),
        "CREATE DEFINER=`admin`@`%` FUNCTION `mldb`.`classify`(`f1` DOUBLE,"
        " `f2` DECIMAL(10,2), `f3` VARCHAR(64)) RETURNS VARCHAR(32) CHARSET utf8mb4"
        " COLLATE utf8mb4_bin SQL SECURITY INVOKER ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'my-endpoint' MAX_BATCH_SIZE 500",
    ),
    (
        """CREATE FUNCTION invoke_claude (request_body TEXT)
          DEFINER = CURRENT_USER()
          RETURNS LONGTEXT
          SQL SECURITY DEFINER
          ALIAS AWS_BEDROCK_INVOKE_MODEL
          MODEL ID 'anthropic.claude-3-haiku-20240307-v1:0'
          CONTENT_TYPE 'application/json'
          ACCEPT 'application/json'
          TIMEOUT_MS 30000""",
        bedrock(
            "invoke_claude",
            Argument("request_body", "TEXT"),
            "LONGTEXT",
            model_id="anthropic.claude-3-haiku-20240307-v1:0",
            timeout_ms=30000,
            definer="CURRENT_USER",
            security="DEFINER",
        ),
        "CREATE DEFINER=CURRENT_USER FUNCTION `invoke_claude`(`request_body` TEXT)"
        " RETURNS LONGTEXT SQL SECURITY DEFINER ALIAS AWS_BEDROCK_INVOKE_MODEL"
        " MODEL ID 'anthropic.claude-3-haiku-20240307-v1:0' CONTENT_TYPE 'application/json'"
        " ACCEPT 'application/json' TIMEOUT_MS 30000",
    ),
    (
        "create function titan(p mediumtext) returns varchar(8000) "
        "alias aws_bedrock_invoke_model model id 'amazon.titan-text-express-v1' "
        "accept 'text/plain' content_type \"application/x-text\";",
        bedrock(
            "titan",
            Argument("p", "MEDIUMTEXT"),
            "VARCHAR(8000)",
            model_id="amazon.titan-text-express-v1",
            content_type="application/x-text",
            accept="text/plain",
        ),
        "CREATE FUNCTION `titan`(`p` MEDIUMTEXT) RETURNS VARCHAR(8000) ALIAS"
        " AWS_BEDROCK_INVOKE_MODEL MODEL ID 'amazon.titan-text-express-v1'"
        " CONTENT_TYPE 'application/x-text' ACCEPT 'text/plain'",
    ),
    (
        "CREATE FUNCTION `my db`.`odd``name` (`select` INT UNSIGNED, `x y` char(3))"
        " RETURNS double ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'it''s\\\\here'",
        sagemaker(
            "odd`name",
            (Argument("select", "INT UNSIGNED"), Argument("x y", "CHAR(3)")),
            "DOUBLE",
            schema="my db",
            endpoint="it's\\here",
        ),
        "CREATE FUNCTION `my db`.`odd``name`(`select` INT UNSIGNED, `x y` CHAR(3))"
        " RETURNS DOUBLE ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'it''s\\\\here' MAX_BATCH_SIZE 10000",
    ),
    (
        "/* leading */ CREATE /* a */ FUNCTION -- line comment\n"
        "  db . f /*b*/ ( # hash comment\n"
        "  a integer, b real , c numeric(5) , d bool )\n"
        "  RETURNS float # after type\n"
        "  ALIAS /* mid */ AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT -- x\n"
        "  NAME 'ep' MAX_BATCH_SIZE /* n */ 25 ; -- done\n",
        sagemaker(
            "f",
            (
                Argument("a", "INT"),
                Argument("b", "DOUBLE"),
                Argument("c", "DECIMAL(5)"),
                Argument("d", "TINYINT(1)"),
            ),
            "FLOAT",
            schema="db",
            endpoint="ep",
            max_batch_size=25,
        ),
        "CREATE FUNCTION `db`.`f`(`a` INT, `b` DOUBLE, `c` DECIMAL(5), `d` TINYINT(1))"
        " RETURNS FLOAT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ep'"
        " MAX_BATCH_SIZE 25",
    ),
    (
        "CREATE DEFINER=`root`@`localhost` FUNCTION score(t VARCHAR(255) CHARACTER SET latin1)"
        " RETURNS DECIMAL(5,4) ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ep'",
        sagemaker(
            "score",
            (Argument("t", "VARCHAR(255) CHARSET latin1"),),
            "DECIMAL(5,4)",
            endpoint="ep",
            definer="`root`@`localhost`",
        ),
        "CREATE DEFINER=`root`@`localhost` FUNCTION `score`(`t` VARCHAR(255) CHARSET latin1)"
        " RETURNS DECIMAL(5,4) ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ep'"
        " MAX_BATCH_SIZE 10000",
    ),
    (
        "CREATE FUNCTION f (x BIGINT) DEFINER = ml_user@10.0.%"
        " RETURNS BIGINT(20) UNSIGNED ZEROFILL SQL SECURITY DEFINER"
        " ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ep' MAX_BATCH_SIZE 1",
        sagemaker(
            "f",
            (Argument("x", "BIGINT"),),
            "BIGINT(20) UNSIGNED ZEROFILL",
            endpoint="ep",
            max_batch_size=1,
            definer="`ml_user`@`10.0.%`",
            security="DEFINER",
        ),
        "CREATE DEFINER=`ml_user`@`10.0.%` FUNCTION `f`(`x` BIGINT) RETURNS BIGINT(20)"
        " UNSIGNED ZEROFILL SQL SECURITY DEFINER ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'ep' MAX_BATCH_SIZE 1",
    ),
    (
        "CREATE FUNCTION f (x TINYTEXT) DEFINER = bob RETURNS CHAR"
        " ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ep'",
        sagemaker(
            "f",
            (Argument("x", "TINYTEXT"),),
            "CHAR",
            endpoint="ep",
            definer="`bob`@`%`",
        ),
        "CREATE DEFINER=`bob`@`%` FUNCTION `f`(`x` TINYTEXT) RETURNS CHAR"
        " ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ep' MAX_BATCH_SIZE 10000",
    ),
    (
        "/*!50003 CREATE*/ /*!50020 DEFINER=`a`@`b`*/ /*!50003 FUNCTION g(x int) RETURNS int"
        " ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ep' */",
        sagemaker("g", (Argument("x", "INT"),), "INT", endpoint="ep", definer="`a`@`b`"),
        "CREATE DEFINER=`a`@`b` FUNCTION `g`(`x` INT) RETURNS INT"
        " ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ep' MAX_BATCH_SIZE 10000",
    ),
]


@pytest.mark.parametrize(("ddl", "expected", "sql"), GOLDEN)
def test_golden(ddl: str, expected: AliasFunction, sql: str) -> None:
    parsed = parse_ml_ddl(ddl)
    assert parsed == replace(expected, sql=sql)
    assert looks_like_ml_ddl(ddl)
    assert looks_like_ml_ddl(ddl.encode())


@pytest.mark.parametrize(("ddl", "expected", "sql"), GOLDEN)
def test_round_trip(ddl: str, expected: AliasFunction, sql: str) -> None:
    parsed = parse_ml_ddl(ddl)
    assert isinstance(parsed, AliasFunction)
    assert parse_ml_ddl(parsed.sql) == parsed


DROPS = [
    ("DROP FUNCTION will_churn", DropFunction(None, "will_churn", False)),
    ("drop function if exists will_churn;", DropFunction(None, "will_churn", True)),
    ("DROP FUNCTION IF EXISTS mldb.f", DropFunction("mldb", "f", True)),
    ("DROP /* c */ FUNCTION `a``b`.`c d` -- x", DropFunction("a`b", "c d", False)),
    ("  drop function\n`IF`", DropFunction(None, "IF", False)),
    ("/*!40101 DROP FUNCTION IF EXISTS f */;", DropFunction(None, "f", True)),
]


@pytest.mark.parametrize(("sql", "expected"), DROPS)
def test_drop(sql: str, expected: DropFunction) -> None:
    assert looks_like_ml_ddl(sql)
    assert parse_ml_ddl(sql) == expected


HEAD = "CREATE FUNCTION f (x INT) RETURNS INT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT "
BED = "CREATE FUNCTION b ({args}) RETURNS TEXT ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'm'"

#: (DDL, MySQL error code, expected fragment of the message).
INVALID = [
    (HEAD, 1064, "near '' at line 1"),
    (HEAD + "MAX_BATCH_SIZE 5", 1064, "near 'MAX_BATCH_SIZE 5' at line 1"),
    (HEAD + "ENDPOINT 'ep'", 1064, "near ''ep'' at line 1"),
    (HEAD + "ENDPOINT NAME 'ep", 1064, "near ''ep' at line 1"),
    (HEAD + "ENDPOINT NAME 'ep' MAX_BATCH_SIZE 0", 1210, "MAX_BATCH_SIZE: 0"),
    (HEAD + "ENDPOINT NAME 'ep' MAX_BATCH_SIZE -1", 1064, "near '-1' at line 1"),
    (HEAD + "ENDPOINT NAME 'ep' MAX_BATCH_SIZE 'x';", 1064, "near ''x'' at line 1"),
    (HEAD + "ENDPOINT NAME 'ep' MAX_BATCH_SIZE", 1064, "near '' at line 1"),
    (HEAD + "ENDPOINT NAME 'ep' extra garbage;", 1064, "near 'extra garbage' at line 1"),
    (HEAD + "ENDPOINT NAME 'ep';\nSELECT 1", 1064, "near 'SELECT 1' at line 2"),
    (
        "CREATE FUNCTION f (x INT) RETURNS INT ALIAS AWS_SAGEMAKER_ENDPOINT ENDPOINT NAME 'e'",
        1064,
        "near 'AWS_SAGEMAKER_ENDPOINT ENDPOINT NAME 'e'' at line 1",
    ),
    (
        "CREATE FUNCTION f (x INT) RETURNS JSON ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e'",
        1235,
        "'JSON as the return type of an AWS_SAGEMAKER_INVOKE_ENDPOINT function'",
    ),
    (
        "CREATE FUNCTION f (x INT) RETURNS blob ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e'",
        1235,
        "'BLOB as the return type",
    ),
    (
        "CREATE FUNCTION f (x INT) RETURNS DATE ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e'",
        1235,
        "'DATE as the return type",
    ),
    (
        "CREATE FUNCTION f (x INT) RETURNS BIT(1) ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e'",
        1235,
        "'BIT as the return type",
    ),
    (
        "CREATE FUNCTION f (x INT) RETURNS TEXT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e'",
        1235,
        "'TEXT as the return type of an AWS_SAGEMAKER_INVOKE_ENDPOINT function'",
    ),
    (
        "CREATE FUNCTION f (x DATETIME) RETURNS INT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e'",
        1235,
        "'DATETIME as an argument type",
    ),
    (
        "CREATE FUNCTION b (x TEXT) RETURNS INT ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'm'",
        1235,
        "'INT as the return type of an AWS_BEDROCK_INVOKE_MODEL function'",
    ),
    (BED.format(args="a TEXT, b TEXT"), 1064, "near 'b TEXT) RETURNS TEXT ALIAS"),
    (BED.format(args=""), 1064, "near ') RETURNS TEXT ALIAS AWS_BEDROCK"),
    (BED.format(args="a TEXT") + " TIMEOUT_MS 0", 1210, "TIMEOUT_MS: 0"),
    (BED.format(args="a TEXT") + " ACCEPT 'x' ACCEPT 'y'", 1064, "near 'ACCEPT 'y'' at line 1"),
    (BED.format(args="a TEXT").replace("MODEL ID 'm'", "ENDPOINT NAME 'm'"), 1064, "near 'EN"),
    (
        "CREATE FUNCTION f () RETURNS INT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'e'",
        1064,
        "near ') RETURNS INT",
    ),
    (
        "CREATE FUNCTION f (x INT, X INT) RETURNS INT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e'",
        1330,
        "Duplicate parameter: X",
    ),
    (
        "CREATE FUNCTION f (x FOO) RETURNS INT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e'",
        1064,
        "near 'FOO) RETURNS INT",
    ),
    (
        "CREATE FUNCTION f (x VARCHAR) RETURNS INT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e'",
        1064,
        "near ') RETURNS INT",
    ),
    (
        "CREATE DEFINER=a FUNCTION f (x INT) DEFINER=b RETURNS INT"
        " ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'e'",
        1064,
        "near 'DEFINER=b RETURNS",
    ),
    (
        "CREATE FUNCTION f (x INT) RETURNS INT DETERMINISTIC ALIAS"
        " AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'e'",
        1064,
        "near 'DETERMINISTIC ALIAS",
    ),
    (
        "CREATE FUNCTION f (x INT) RETURNS INT SQL SECURITY NOBODY ALIAS"
        " AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'e'",
        1064,
        "near 'NOBODY ALIAS",
    ),
    (
        "CREATE FUNCTION f (x INT) RETURNS INT ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
        " ENDPOINT NAME 'e' /* open comment",
        1064,
        "near '/* open comment' at line 1",
    ),
    (
        HEAD + "ENDPOINT '" + "x" * 100 + "' junk",
        1064,
        "near ''" + "x" * 79 + "' at line 1",
    ),
    ("DROP FUNCTION", 1064, "near '' at line 1"),
    ("DROP FUNCTION IF EXISTS a.b.c", 1064, "near '.c' at line 1"),
    ("DROP FUNCTION f g", 1064, "near 'g' at line 1"),
]


@pytest.mark.parametrize(("ddl", "code", "fragment"), INVALID)
def test_invalid(ddl: str, code: int, fragment: str) -> None:
    with pytest.raises(PlanError) as raised:
        parse_ml_ddl(ddl)
    assert raised.value.code == code
    assert fragment in str(raised.value)
    if code == 1064:
        assert str(raised.value).startswith(
            "You have an error in your SQL syntax; check the manual that corresponds to your"
            " MySQL server version for the right syntax to use near '"
        )


def test_seed_as_printed_has_a_typographic_quote() -> None:
    """The slide's U+2019 quote does not close the endpoint name: a syntax error, with a hint."""
    with pytest.raises(PlanError) as raised:
        parse_ml_ddl(SEED_AS_PRINTED)
    assert raised.value.code == 1064
    assert "near ''tuning-job-123\u2019;' at line 14" in str(raised.value)
    assert "typographic quote" in str(raised.value)


def test_error_line_is_the_offending_tokens_line() -> None:
    ddl = SEED_WILL_CHURN.replace("endpoint name", "endpoint\nnam")
    with pytest.raises(PlanError, match=r"near 'nam 'tuning-job-123'' at line 15"):
        parse_ml_ddl(ddl)


NOT_ML = [
    "CREATE FUNCTION f() RETURNS INT RETURN 1",
    "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC RETURN x + 1;",
    "CREATE DEFINER=`root`@`%` FUNCTION f(a INT) RETURNS INT SQL SECURITY INVOKER"
    " RETURN (SELECT alias FROM t WHERE id = a)",
    "CREATE FUNCTION f(a ENUM('x','y')) RETURNS DATETIME(6) COMMENT 'alias' RETURN NOW()",
    "CREATE AGGREGATE FUNCTION alias_udf RETURNS STRING SONAME 'udf.so'",
    "CREATE FUNCTION alias_udf RETURNS INTEGER SONAME 'udf.so'",
    "CREATE TABLE t (alias VARCHAR(10))",
    "CREATE TABLE t AS SELECT 1 AS alias",
    "CREATE VIEW v AS SELECT 'ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT'",
    "CREATE PROCEDURE p() SELECT 1 AS alias",
    "SELECT will_churn(1) AS alias",
    "SELECT 1",
    "",
]


@pytest.mark.parametrize("sql", NOT_ML)
def test_not_ml(sql: str) -> None:
    assert parse_ml_ddl(sql) is None


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", False),
        ("CREATE TABLE t (a INT)", False),
        ("create function f(a int) returns int alias x", True),
        ("  -- c\n/* x */ CREATE DEFINER=a FUNCTION ... ALIAS", True),
        ("# c\ndrop function f", True),
        ("DROP FUNCTIONS", False),
        ("DROP TABLE alias", False),
        ("/*!40101 DROP FUNCTION f */", True),
        ("INSERT INTO t VALUES ('create ... alias')", False),
    ],
)
def test_looks_like_ml_ddl(sql: str, expected: bool) -> None:
    assert looks_like_ml_ddl(sql) is expected
    assert looks_like_ml_ddl(sql.encode()) is expected


def test_doctests() -> None:
    assert doctest.testmod(rewriter.ddl).failed == 0


@pytest.mark.parametrize(("ddl", "expected", "sql"), GOLDEN[:4])
def test_every_prefix_parses_or_raises_plan_error(
    ddl: str, expected: AliasFunction, sql: str
) -> None:
    """Cut anywhere, the parser answers (None, a result) or raises PlanError, never
    anything else; what it accepts round-trips."""
    for end in range(len(ddl)):
        try:
            parsed = parse_ml_ddl(ddl[:end])
        except PlanError as error:
            assert error.code in (1064, 1210, 1235, 1330)
            continue
        if isinstance(parsed, AliasFunction):
            assert parse_ml_ddl(parsed.sql) == parsed


def test_ansi_quotes_make_double_quotes_identifiers() -> None:
    """Under ANSI_QUOTES "my f" names the function (and a backslash in it is a character);
    otherwise double quotes make a string, which is no function name."""
    ddl = (
        'CREATE FUNCTION "my\\f"("x" TEXT) RETURNS TEXT '
        "ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'model-1'"
    )
    parsed = parse_ml_ddl(ddl, ansi_quotes=True)
    assert isinstance(parsed, AliasFunction)
    assert (parsed.name, [a.name for a in parsed.args]) == ("my\\f", ["x"])
    with pytest.raises(PlanError):
        parse_ml_ddl(ddl)


_ALIAS_DDL = (
    "CREATE{space}FUNCTION f(a INT) RETURNS INT "
    "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ep'"
)


@pytest.mark.parametrize(
    ("sql", "is_alias"),
    [
        (_ALIAS_DDL.format(space=" "), True),
        (_ALIAS_DDL.format(space="\t\x0b\x0c"), True),
        # The server's whitespace is ASCII: U+00A0 or U+3000 make one identifier of the
        # two words, as every character above U+007F is an identifier's to it.
        (_ALIAS_DDL.format(space="\u00a0"), False),
        (_ALIAS_DDL.format(space="\u3000"), False),
        # "--" starts a comment before any control character, not only whitespace.
        ("--\x01 made by a tool\n" + _ALIAS_DDL.format(space=" "), True),
    ],
)
def test_ddl_is_read_with_the_servers_whitespace(sql: str, is_alias: bool) -> None:
    if is_alias:
        assert isinstance(parse_ml_ddl(sql), AliasFunction)
    else:  # the server's own answer to "CREATE<U+00A0>FUNCTION": a syntax error
        with pytest.raises(PlanError) as caught:
            parse_ml_ddl(sql)
        assert caught.value.code == 1064
