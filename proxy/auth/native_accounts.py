"""mysql_native_password logins without the clear password, as a server does them.

A client limited to what a MariaDB server asks of it (MariaDB Connector/J, or
mysql-connector without TLS) cannot answer caching_sha2_password's full path without TLS:
it has no RSA key, or sends the password in clear. A server switches such a client to its
account's own plugin. The proxy does the same when the ``--backend`` URL names an account
that may read ``mysql.user``: it reads the account's plugin and hash once the client has
said who it is, and for a ``mysql_native_password`` account it switches the client to that
plugin, recovers SHA1(password) from the client's answer with the stored hash
SHA1(SHA1(password)), and logs in to the backend with it (native_scramble_from_stage1),
as ProxySQL does. Nothing else needs the clear password: the backend still checks every
login, with its own error when it refuses.

Anything else (no URL account, no right to read ``mysql.user``, another plugin, a user
with several host rows that disagree, an unknown user) falls back to caching_sha2_password
(proxy.auth.client_auth). Hashes stay in this process's memory only, never in a log; an
entry lives ``HASH_TTL`` seconds, is read again when a client's answer does not match it
(the password changed), and is forgotten when the backend refuses a login made with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from proxy.errors import BackendError
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import fetch_rows, read_response, send_command
from proxy.wire import scramble

log = logging.getLogger(f"mlproxy.{__name__}")

#: Seconds a hash read from the backend is used before it is read again.
HASH_TTL = 60.0
#: Seconds before a lookup is tried again after the backend could not answer one.
RETRY_AFTER = 60.0
MAX_ENTRIES = 10_000
#: MySQL's mysql_native_password hash: '*' and 40 hex digits of SHA1(SHA1(password)).
HASH_LENGTH = 41


def parse_native_hash(text: bytes) -> bytes | None:
    """SHA1(SHA1(password)) from ``*HEX`` (empty for an account without a password);
    None for anything else.

    >>> parse_native_hash(b"*" + b"AB" * 20) == bytes([0xAB]) * 20
    True
    >>> parse_native_hash(b""), parse_native_hash(b"invalid")
    (b'', None)
    """
    if not text:
        return b""
    if len(text) != HASH_LENGTH or text[:1] != b"*":
        return None
    try:
        return bytes.fromhex(text[1:].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def recover_stage1(answer: bytes, nonce: bytes, stage2: bytes) -> bytes | None:
    """SHA1(password) from a client's mysql_native_password answer to ``nonce``, when the
    answer matches the stored SHA1(SHA1(password)); None when it does not.

    >>> stage1 = hashlib.sha1(b"secret").digest()
    >>> stage2 = hashlib.sha1(stage1).digest()
    >>> answer = scramble.native_scramble(b"secret", b"n" * 20)
    >>> recover_stage1(answer, b"n" * 20, stage2) == stage1
    True
    >>> recover_stage1(scramble.native_scramble(b"wrong", b"n" * 20), b"n" * 20, stage2)
    """
    if len(answer) != len(stage2) or not stage2:
        return None
    mask = hashlib.sha1(nonce[:20] + stage2).digest()
    stage1 = bytes(a ^ m for a, m in zip(answer, mask, strict=True))
    return stage1 if hmac.compare_digest(hashlib.sha1(stage1).digest(), stage2) else None


def account_query(user: bytes, mariadb: bool = False) -> str:
    """Every host row of ``user`` (the name as a hex literal: no quoting to get wrong);
    on MariaDB with the old ``Password`` column too, which must agree (below)."""
    columns = "plugin, authentication_string" + (", Password" if mariadb else "")
    return f"SELECT {columns} FROM mysql.user WHERE User = X'{user.hex()}'"


def native_stage2(rows: list[tuple[bytes | None, ...]]) -> bytes | None:
    """The one mysql_native_password hash all of a user's rows share, or None (no row,
    another plugin, or rows that differ: which one the backend picks depends on the
    client's host, so the proxy does not guess)."""
    hashes = set()
    for plugin, stored, *old in rows:
        if plugin != scramble.NATIVE.encode():
            return None
        if old and old[0] and old[0] != stored:
            # A catalog edited by hand (mysql.user made a plain table, as old tools and
            # MariaDB's own tests do): which column the server trusts is its own affair,
            # so the proxy does not guess (MariaDB's main.set_password, MDEV-16238).
            return None
        hashes.add(parse_native_hash(stored or b""))
    if len(hashes) != 1:
        return None
    return hashes.pop()


class NativeAccounts:
    """Reads accounts' mysql_native_password hashes with the backend URL's account."""

    def __init__(self, connect: Callable[[], Awaitable[BackendConnection]]) -> None:
        self._connect = connect
        self._conn: BackendConnection | None = None
        self._lock = asyncio.Lock()
        self._known: OrderedDict[bytes, tuple[bytes | None, float]] = OrderedDict()
        self._unavailable_until = 0.0

    async def stage2(self, user: bytes, *, fresh: bool = False) -> bytes | None:
        """The user's SHA1(SHA1(password)) when it is a mysql_native_password account
        (b"" without a password), else None; ``fresh`` reads it again."""
        now = time.monotonic()
        known = self._known.get(user)
        if known is not None and not fresh and now - known[1] < HASH_TTL:
            return known[0]
        if now < self._unavailable_until:
            return None
        rows = await self._read(user)
        if rows is None:
            return None
        found = native_stage2(rows)
        self._known[user] = (found, now)
        self._known.move_to_end(user)
        while len(self._known) > MAX_ENTRIES:
            self._known.popitem(last=False)
        return found

    def forget(self, user: bytes) -> None:
        self._known.pop(user, None)

    async def _read(self, user: bytes) -> list[tuple[bytes | None, ...]] | None:
        async with self._lock:
            try:
                if self._conn is None:
                    self._conn = await self._connect()
                    # Each read its own transaction, whatever the server's defaults: with
                    # autocommit off (a global a DBA may set) the reads would keep the
                    # first one's snapshot and never see a changed password.
                    await send_command(
                        self._conn, self._conn.query_payload(b"SET SESSION autocommit = 1")
                    )
                    await read_response(self._conn)
                mariadb = self._conn.greeting.is_mariadb
                return await fetch_rows(self._conn, account_query(user, mariadb))
            except BackendError as exc:
                log.info(
                    "cannot read account hashes with the backend URL's account (%s): "
                    "logins use caching_sha2_password for %.0f s",
                    exc,
                    RETRY_AFTER,
                )
                self._unavailable_until = time.monotonic() + RETRY_AFTER
                await self._drop()
                return None

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
