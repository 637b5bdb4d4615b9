"""Adversarial: quoted data never becomes SQL in the proxy, in any sql_mode or character set.

An application that quotes a value correctly for its session (the way the client library's
escape function does, in the session's sql_mode and character set) must get exactly what
the database gives it directly: the proxy may not read part of the value as an ML call,
evaluate it (a model request, a subquery's side effect such as ``@x := 42``), or send
hidden text to the model. And statements that are legitimate in a mode or character set
must work through the proxy as they do directly.

The oracle is the database itself: every statement is sent as the same bytes directly and
through the proxy. The matrix is every sql_mode that changes how text is split, times every
character set the server accepts from clients, times values built to cross a string's end
(a quote after a backslash, a backslash as the second byte of a multibyte character, comment
openers, newlines).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import APP, TEST_DB, RunningProxy, admin_connect, start_proxy
from tests.support import switchable_backend
from tests.support.backend import BackendInfo

S = "aws_comprehend_detect_sentiment"
MODES = ("", "NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "NO_BACKSLASH_ESCAPES,ANSI_QUOTES", "ANSI")
#: Character sets the server refuses for clients.
NOT_CLIENT = {"ucs2", "utf16", "utf16le", "utf32"}
#: Character sets in which the second byte of a character can be ASCII.
MULTIBYTE_ASCII_TAIL = {"big5", "cp932", "gbk", "sjis", "gb18030"}
PYTHON_CODEC = {"sjis": "shift_jis", "latin1": "cp1252", "utf8mb3": "utf-8", "utf8mb4": "utf-8"}
PYTHON_CODEC |= {"ujis": "euc_jp", "eucjpms": "euc_jp", "euckr": "euc_kr", "koi8r": "koi8_r"}
PYTHON_CODEC |= {"latin2": "iso8859_2", "greek": "iso8859_7", "hebrew": "iso8859_8"}
PYTHON_CODEC |= {"latin5": "iso8859_9", "latin7": "iso8859_13", "tis620": "tis_620"}
PYTHON_CODEC |= {"koi8u": "koi8_u", "macce": "mac_latin2", "macroman": "mac_roman"}

#: What an attacker puts after the part that is meant to close the string (without quotes,
#: which the application's escaping would double or escape).
SMUGGLED = f" OR {S}((SELECT @x := 42), 0x656e) = 0x504f534954495645 -- "


@pytest.fixture(scope="module")
def charsets(backend: BackendInfo) -> list[str]:
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute("SHOW CHARACTER SET")
        return sorted(row[0] for row in cur.fetchall() if row[0] not in NOT_CLIENT)


@pytest.fixture(scope="module")
def texts(backend: BackendInfo) -> None:
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS sec_texts")
        cur.execute("CREATE TABLE sec_texts (id INT PRIMARY KEY, body VARCHAR(100))")
        cur.execute("INSERT INTO sec_texts VALUES (1, 'hello'), (2, 'it''s'), (3, 'a\\\\b')")


@pytest.fixture(scope="module")
def ml_proxy(backend: BackendInfo, texts: None) -> Iterator[RunningProxy]:
    proxy = start_proxy(backend, comprehend_backend=switchable_backend.SETTING, ml_cache_entries=0)
    yield proxy
    proxy.stop()


def connect(host: str, port: int) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=host,
        port=port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
        autocommit=True,
        charset="utf8mb4",
    )


@pytest.fixture(scope="module")
def pair(backend: BackendInfo, ml_proxy: RunningProxy) -> Iterator[list[pymysql.Connection[Any]]]:
    """One connection through the proxy and one direct, set alike by each test."""
    conns = [connect("127.0.0.1", ml_proxy.port), connect(backend.host, backend.port)]
    yield conns
    for conn in conns:
        conn.close()


def codec(charset: str) -> str:
    return PYTHON_CODEC.get(charset, charset)


def encodable(text: str, charset: str) -> bytes | None:
    try:
        return text.encode(codec(charset))
    except (LookupError, UnicodeEncodeError):
        return None


def quote(value: str, charset: str, no_backslash_escapes: bool) -> bytes | None:
    """``value`` as a string literal, escaped as the client library escapes it for the
    session (mysql_real_escape_string; under NO_BACKSLASH_ESCAPES only quotes doubled)."""
    if no_backslash_escapes:
        body = value.replace("'", "''")
    else:
        escapes = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\0": "\\0", "\n": "\\n", "\r": "\\r"}
        body = "".join(escapes.get(char, char) for char in value)
    encoded = encodable(body, charset)
    return None if encoded is None else b"'" + encoded + b"'"


def tail_char(charset: str, byte: int) -> str | None:
    """A character whose encoding in ``charset`` ends with the ASCII ``byte``."""
    for point in range(0x4E00, 0x9FFF):
        encoded = encodable(chr(point), charset)
        if encoded is not None and len(encoded) == 2 and encoded[1] == byte:
            return chr(point)
    return None


def hostile_values(charset: str) -> list[str]:
    values = [
        "'" + SMUGGLED,
        "\\'" + SMUGGLED,
        "\\" + "'" + SMUGGLED,
        "x\\",
        "*/" + SMUGGLED + "/*",
        "\n#" + SMUGGLED + "\n",
        '"' + SMUGGLED + '"',
    ]
    if charset in MULTIBYTE_ASCII_TAIL:
        for byte in (0x5C, 0x27, 0x60):
            char = tail_char(charset, byte)
            if char is not None:
                values += [char + "'" + SMUGGLED, char + SMUGGLED]
    return values


def run(conn: pymysql.Connection[Any], sql: bytes) -> tuple[str, Any]:
    """("rows", rows) or ("error", code)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)  # bytes: sent as they are
            return "rows", [tuple(r) for r in cur.fetchall()]
    except pymysql.err.MySQLError as exc:
        return "error", exc.args[0]


def set_session(conns: list[pymysql.Connection[Any]], mode: str, charset: str) -> None:
    for conn in conns:
        with conn.cursor() as cur:
            cur.execute(f"SET NAMES {charset}")
            cur.execute(f"SET SESSION sql_mode = '{mode}'")
            cur.execute("SET @x = NULL")


def x_of(conn: pymysql.Connection[Any]) -> Any:
    with conn.cursor() as cur:
        cur.execute("SELECT @x")
        return cur.fetchone()[0]


@pytest.mark.parametrize("mode", MODES)
def test_quoted_values_stay_data(
    pair: list[pymysql.Connection[Any]], charsets: list[str], mode: str
) -> None:
    """Every hostile value, quoted correctly for the session, in every client character
    set: the proxy answers as the database does, asks the model nothing, runs nothing."""
    proxied, direct = pair
    nbe = "NO_BACKSLASH_ESCAPES" in mode
    checked = 0
    for charset in charsets:
        set_session(pair, mode, charset)
        for value in hostile_values(charset):
            literal = quote(value, charset, nbe)
            if literal is None:
                continue
            sql = b"SELECT id FROM sec_texts WHERE body = " + literal + b" ORDER BY id"
            switchable_backend.reset()
            expected = run(direct, sql)
            got = run(proxied, sql)
            case = f"{mode or 'default'} / {charset}: {sql!r}"
            assert got == expected, case
            assert switchable_backend.batches == [], case
            assert x_of(proxied) is None, case
            checked += 1
    assert checked > len(charsets) * 5


@pytest.mark.parametrize("mode", MODES)
def test_legitimate_literals_beside_calls(
    pair: list[pymysql.Connection[Any]], charsets: list[str], mode: str
) -> None:
    """Literals a mode allows (``'C:\\dir\\'`` under NO_BACKSLASH_ESCAPES, a gbk character
    ending in 0x5C) beside a real call: the call answers for the value the server reads,
    and the literal is the database's."""
    proxied, direct = pair
    nbe = "NO_BACKSLASH_ESCAPES" in mode
    checked = 0
    for charset in charsets:
        set_session(pair, mode, charset)
        values = ["C:\\dir\\", "it's", 'say "hi"', "-- not a comment", "/* nor this */ #"]
        char = tail_char(charset, 0x5C) if charset in MULTIBYTE_ASCII_TAIL else None
        values += [char, char + "'"] if char else []
        for value in values:
            literal = quote(value, charset, nbe)
            if literal is None or charset == "binary":
                continue
            call = S.encode() + b"(" + literal + b", 'en')"
            sql = b"SELECT HEX(" + literal + b") AS h, " + call + b" AS label"
            switchable_backend.reset()
            got = run(proxied, sql)
            case = f"{mode or 'default'} / {charset}: {sql!r}"
            assert got[0] == "rows", f"{case}: {got}"
            (hex_value, label), *_ = got[1]
            assert run(direct, b"SELECT HEX(" + literal + b") AS h") == ("rows", [(hex_value,)])
            # The model got the value as the server reads it (in UTF-8).
            assert switchable_backend.batches == [[(value, "en")]], case
            assert label == switchable_backend.answer(value)[0], case
            checked += 1
    assert checked > len(charsets) * 3


def test_calls_in_comments_are_not_evaluated(pair: list[pymysql.Connection[Any]]) -> None:
    """A call inside any comment the server skips is never evaluated; one inside an
    executable comment the server runs is (as the server would call it)."""
    proxied, direct = pair
    set_session(pair, "", "utf8mb4")
    skipped = [
        f"SELECT 1 # {S}((SELECT @x := 42), 'en')\n",
        f"SELECT 1 -- {S}((SELECT @x := 42), 'en')",
        f"SELECT 1 --\t{S}((SELECT @x := 42), 'en')",
        f"SELECT 1 /* {S}((SELECT @x := 42), 'en') */",
        f"SELECT 1 /*!999999 + {S}((SELECT @x := 42), 'en') */",
        f"SELECT 1 /*+ {S}((SELECT @x := 42), 'en') */",
    ]
    for sql in skipped:
        switchable_backend.reset()
        assert run(proxied, sql.encode()) == run(direct, sql.encode()), sql
        assert switchable_backend.batches == [], sql
        assert x_of(proxied) is None, sql
    switchable_backend.reset()
    kind, answer = run(proxied, f"SELECT /*!50000 {S}('hello', 'en') */".encode())
    assert (kind, answer) == ("rows", [(switchable_backend.answer("hello")[0],)])


def test_ansi_quoted_identifiers(pair: list[pymysql.Connection[Any]]) -> None:
    """Under ANSI_QUOTES a double-quoted name is an identifier, also when its quoting would
    end a string the other way ("x\\"" is the column x\\")."""
    proxied, direct = pair
    set_session(pair, "ANSI_QUOTES", "utf8mb4")
    switchable_backend.reset()
    got = run(proxied, f'SELECT "id", {S}("body", \'en\') FROM "sec_texts" ORDER BY 1'.encode())
    expected = run(direct, b"SELECT id, body FROM sec_texts ORDER BY 1")
    assert got == ("rows", [(i, switchable_backend.answer(b)[0]) for i, b in expected[1]])
    hostile = f'SELECT "x\\"" OR {S}((SELECT @x := 42), \'en\') -- " FROM sec_texts'.encode()
    switchable_backend.reset()
    assert run(proxied, hostile) == run(direct, hostile)
    assert switchable_backend.batches == []
    assert x_of(proxied) is None


@pytest.mark.parametrize("mode", ["PIPES_AS_CONCAT", "ANSI", ""])
def test_double_pipes_as_the_session_reads_them(
    pair: list[pymysql.Connection[Any]], mode: str
) -> None:
    """Under PIPES_AS_CONCAT (and ANSI) ``||`` concatenates: the key query must select
    the rows the statement does (it once read ``||`` as OR, and the calls got NULL);
    without the mode it is OR, as the server reads it."""
    proxied, direct = pair
    set_session(pair, mode, "utf8mb4")
    switchable_backend.reset()
    where = "body || 'x' = CONCAT(body, 'x') AND id < 3"
    got = run(
        proxied, f"SELECT id, {S}(body, 'en') FROM sec_texts WHERE {where} ORDER BY 1".encode()
    )
    expected = run(direct, f"SELECT id, body FROM sec_texts WHERE {where} ORDER BY 1".encode())
    assert expected[0] == "rows" and bool(expected[1]) == (mode != "")
    assert got == ("rows", [(i, switchable_backend.answer(b)[0]) for i, b in expected[1]])


@pytest.mark.parametrize("mode", ["", "NO_BACKSLASH_ESCAPES"])
def test_prepared_placeholders_as_the_server_counts_them(
    ml_proxy: RunningProxy, pair: list[pymysql.Connection[Any]], mode: str
) -> None:
    """A prepared ML statement binds its parameters where the server sees ``?``: under
    NO_BACKSLASH_ESCAPES ``'x\\'`` ends before the ``?`` that follows it. (``pair`` has
    logged the account in once, so the proxy's fast path answers: without TLS,
    mysql-connector's pure-Python client answers a full caching_sha2 exchange with the
    password in clear instead of RSA, which MySQL 8 refuses as the proxy does.)"""
    import mysql.connector

    conn = mysql.connector.connect(
        host="127.0.0.1",
        port=ml_proxy.port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
        use_pure=True,
        ssl_disabled=True,
        autocommit=True,
    )
    try:
        plain = conn.cursor()
        plain.execute(f"SET SESSION sql_mode = '{mode}'")
        literal = "'x\\'" if mode else "'x\\\\'"  # the one-character string x\ either way
        cur = conn.cursor(prepared=True)
        switchable_backend.reset()
        cur.execute(f"SELECT HEX({literal}) AS h, {S}(?, 'en') AS label", ("hello",))
        assert [tuple(r) for r in cur.fetchall()] == [
            ("785C", switchable_backend.answer("hello")[0])
        ]
        assert switchable_backend.batches == [[("hello", "en")]]
        cur.close()
    finally:
        conn.close()


@pytest.mark.parametrize("charset", ["gbk", "big5", "sjis", "cp932"])
def test_handshake_character_set(
    backend: BackendInfo, ml_proxy: RunningProxy, texts: None, charset: str
) -> None:
    """The character set a client logs in with (no SET NAMES) is read as well."""
    char = tail_char(charset, 0x5C)
    assert char is not None
    literal = quote(char + "'" + SMUGGLED, charset, no_backslash_escapes=False)
    assert literal is not None
    sql = b"SELECT id FROM sec_texts WHERE body = " + literal
    results = []
    for host, port in (("127.0.0.1", ml_proxy.port), (backend.host, backend.port)):
        with pymysql.connect(
            host=host,
            port=port,
            user=APP.user,
            password=APP.password,
            database=TEST_DB,
            charset=charset,
        ) as conn:
            switchable_backend.reset()
            results.append(run(conn, sql))
            assert switchable_backend.batches == []
            assert x_of(conn) is None
    assert results[0] == results[1]
