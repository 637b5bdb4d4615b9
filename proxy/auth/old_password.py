"""mysql_old_password: the pre-4.1 scramble, for backend accounts that still have one.

An account created with a 16-hex-digit hash (``CREATE USER u IDENTIFIED BY PASSWORD
'09301740536db389'``) logs in with MySQL 3.23's scramble, where the server allows it
(``secure_auth = 0``; MariaDB 10.11 still does, with a deprecation warning). The proxy
holds the client's password (it logs in to the backend as the client), so it can answer
for such an account exactly as a client does, and the client sees what it would see
directly. The algorithm is MySQL's ``hash_password`` and ``scramble_323``
(sql/password.c): weak, as the server's own warning says, but the account's owner chose
it, and refusing it would only break the application.

How a MariaDB server asks for it: a client that answered the greeting with
mysql_native_password gets a one-byte 0xFE packet (the "old switch") and answers with
the old scramble of the greeting's first 8 nonce bytes; a full AuthSwitchRequest naming
mysql_old_password carries its own nonce.
"""

from __future__ import annotations

import math

OLD = "mysql_old_password"

#: How long the old scramble's message (the nonce it uses) is.
SCRAMBLE_LENGTH_323 = 8

_MASK = (1 << 64) - 1  # the C code's unsigned long
_LOW31 = (1 << 31) - 1
_RAND_MAX = 0x3FFFFFFF


def hash_password_323(password: bytes) -> tuple[int, int]:
    """MySQL's pre-4.1 password hash: two 31-bit numbers (their 16 hex digits are what
    ``PASSWORD()`` showed, and what the account stores).

    >>> "%08x%08x" % hash_password_323(b"oldpw")
    '09301740536db389'
    """
    nr, add, nr2 = 1345345333, 7, 0x12345671
    for byte in password:
        if byte in b" \t":
            continue
        nr ^= ((((nr & 63) + add) * byte) + (nr << 8)) & _MASK
        nr2 = (nr2 + (((nr2 << 8) & _MASK) ^ nr)) & _MASK
        add += byte
    return nr & _LOW31, nr2 & _LOW31


def old_scramble(password: bytes, nonce: bytes) -> bytes:
    """What a client sends for mysql_old_password: 8 bytes and a NUL, or nothing for an
    empty password (as MariaDB Connector/C's old_password plugin sends it)."""
    if not password:
        return b""
    message = nonce[:SCRAMBLE_LENGTH_323]
    hashed_password, hashed_message = hash_password_323(password), hash_password_323(message)
    seed1 = (hashed_password[0] ^ hashed_message[0]) % _RAND_MAX
    seed2 = (hashed_password[1] ^ hashed_message[1]) % _RAND_MAX

    def rnd() -> float:
        nonlocal seed1, seed2
        seed1 = (seed1 * 3 + seed2) % _RAND_MAX
        seed2 = (seed1 + seed2 + 33) % _RAND_MAX
        return seed1 / _RAND_MAX

    scrambled = [math.floor(rnd() * 31) + 64 for _ in message]
    extra = math.floor(rnd() * 31)
    return bytes(b ^ extra for b in scrambled) + b"\x00"
