"""Backend accounts with the authentication methods clients meet (issue 11, item 2).

Real accounts on the suite's MariaDB: a pre-4.1 password hash (mysql_old_password,
``secure_auth = 0``), ed25519 (when the server can load its plugin) and unix_socket.
The proxy holds the client's password, so an old-password account logs in, and changes
user, as it does directly (MariaDB's own connector is the direct oracle where it is
installed). A method the proxy cannot answer for the client ends with the documented
error 1251 (ER_NOT_SUPPORTED_AUTH_MODE), never a malformed packet, at login and at
COM_CHANGE_USER alike; a refused change leaves the session its old user's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import mysql.connector
import pymysql
import pytest

from proxy.auth.old_password import hash_password_323, old_scramble
from tests.conftest import APP, TEST_DB, RunningProxy, admin_connect
from tests.support.backend import BackendInfo

OLD_USER, OLD_PASSWORD = "mlp_oldpw", "old-secret"
ED_USER, ED_PASSWORD = "mlp_ed25519", "ed-secret"
SOCKET_USER = "mlp_socket"
ER_NOT_SUPPORTED_AUTH_MODE = 1251


@pytest.fixture(scope="module")
def accounts(backend: BackendInfo) -> Iterator[dict[str, bool]]:
    """The accounts; which of them the server could create (ed25519 needs its plugin)."""
    made = {}
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.secure_auth")
        (secure_auth,) = cur.fetchone()
        cur.execute("SET GLOBAL secure_auth = 0")
        old_hash = "{:08x}{:08x}".format(*hash_password_323(OLD_PASSWORD.encode()))
        for user, clause in (
            (OLD_USER, f"IDENTIFIED BY PASSWORD '{old_hash}'"),
            (ED_USER, f"IDENTIFIED VIA ed25519 USING PASSWORD('{ED_PASSWORD}')"),
            (SOCKET_USER, "IDENTIFIED VIA unix_socket"),
        ):
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            if user == ED_USER:
                with contextlib.suppress(pymysql.err.MySQLError):
                    cur.execute("INSTALL SONAME 'auth_ed25519'")  # (installed already: 1968)
            try:
                cur.execute(f"CREATE USER '{user}'@'%' {clause}")
            except pymysql.err.MySQLError:
                made[user] = False
                continue
            cur.execute(f"GRANT SELECT ON {TEST_DB}.* TO '{user}'@'%'")
            made[user] = True
    yield made
    with admin_connect(backend) as conn, conn.cursor() as cur:
        for user in (OLD_USER, ED_USER, SOCKET_USER):
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"SET GLOBAL secure_auth = {int(secure_auth)}")


def current_user(conn: Any) -> str:
    cur = conn.cursor()
    cur.execute("SELECT CURRENT_USER()")
    (user,) = cur.fetchone()
    cur.close()
    return str(user)


def test_the_old_scramble_is_the_servers() -> None:
    """The hash the server stores for PASSWORD_323-style accounts (the suite's own
    change_user test uses this one), and the scramble's form."""
    assert "{:08x}{:08x}".format(*hash_password_323(b"oldpw")) == "09301740536db389"
    answer = old_scramble(b"oldpw", b"12345678abcdefghijkl")
    assert len(answer) == 9 and answer.endswith(b"\x00")
    assert old_scramble(b"", b"12345678") == b""


def test_an_old_password_account_logs_in_through_the_proxy(
    proxy: RunningProxy, accounts: dict[str, bool]
) -> None:
    conn = pymysql.connect(
        host=proxy.host, port=proxy.port, user=OLD_USER, password=OLD_PASSWORD, database=TEST_DB
    )
    with conn:
        assert current_user(conn) == f"{OLD_USER}@%"
    with pytest.raises(pymysql.err.OperationalError) as caught:
        pymysql.connect(host=proxy.host, port=proxy.port, user=OLD_USER, password="wrong")
    assert caught.value.args[0] == 1045  # the backend's own refusal


def test_change_user_to_an_old_password_account_as_directly(
    proxy: RunningProxy, backend: BackendInfo, accounts: dict[str, bool]
) -> None:
    """mysql-connector's COM_CHANGE_USER (through the proxy) and MariaDB's connector
    (directly, where installed: it speaks mysql_old_password itself) end as the same user."""
    conn = mysql.connector.connect(
        host=proxy.host,
        port=proxy.port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
        ssl_verify_cert=False,
    )
    try:
        conn.cmd_change_user(OLD_USER, OLD_PASSWORD, TEST_DB)
        assert current_user(conn) == f"{OLD_USER}@%"
        conn.cmd_change_user(APP.user, APP.password, TEST_DB)
        assert current_user(conn) == f"{APP.user}@%"
    finally:
        conn.close()
    mariadb = pytest.importorskip("mariadb")
    for port in (proxy.port, backend.port):
        direct = mariadb.connect(
            host="127.0.0.1", port=port, user=APP.user, password=APP.password, database=TEST_DB
        )
        try:
            direct.change_user(OLD_USER, OLD_PASSWORD, TEST_DB)
            assert current_user(direct) == f"{OLD_USER}@%", port
        finally:
            direct.close()


#: What each account gets: ed25519 asks the proxy for a method it cannot answer (1251,
#: documented); unix_socket over TCP is refused by the backend itself without asking
#: (1698 ER_ACCESS_DENIED_NO_PASSWORD_ERROR, as directly over TCP).
REFUSALS = {ED_USER: (ER_NOT_SUPPORTED_AUTH_MODE, "08004"), SOCKET_USER: (1698, "28000")}


def _password(user: str) -> str:
    return ED_PASSWORD if user == ED_USER else ""


@pytest.mark.parametrize("user", sorted(REFUSALS))
def test_a_method_the_proxy_cannot_answer_is_a_clean_error_at_login(
    proxy: RunningProxy, backend: BackendInfo, accounts: dict[str, bool], user: str
) -> None:
    if not accounts[user]:
        pytest.skip(f"the backend could not create {user} (its plugin is not loadable)")
    with pytest.raises(pymysql.err.OperationalError) as caught:
        pymysql.connect(host=proxy.host, port=proxy.port, user=user, password=_password(user))
    code, message = caught.value.args
    assert code == REFUSALS[user][0]
    if user == ED_USER:
        assert "mlproxy cannot use" in message and user in message
    else:  # the backend's own answer: the same as directly
        with pytest.raises(pymysql.err.OperationalError) as directly:
            pymysql.connect(host=backend.host, port=backend.port, user=user, password="")
        assert directly.value.args[0] == code


@pytest.mark.parametrize("user", sorted(REFUSALS))
def test_a_method_the_proxy_cannot_answer_is_a_clean_error_at_change_user(
    proxy: RunningProxy, accounts: dict[str, bool], user: str
) -> None:
    """The change fails cleanly and the session goes on as the account it was."""
    if not accounts[user]:
        pytest.skip(f"the backend could not create {user} (its plugin is not loadable)")
    conn = mysql.connector.connect(
        host=proxy.host,
        port=proxy.port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
        ssl_verify_cert=False,
    )
    try:
        with pytest.raises(mysql.connector.Error) as caught:
            conn.cmd_change_user(user, _password(user), TEST_DB)
        assert (caught.value.errno, caught.value.sqlstate) == REFUSALS[user]
        assert current_user(conn) == f"{APP.user}@%"
    finally:
        conn.close()
