"""Sans-IO codecs: framing, integers, OK/ERR, handshake packets and password scrambles.

Scrambles are checked against PyMySQL's independent implementation of the same plugins.
"""

from __future__ import annotations

import pymysql._auth as pymysql_auth
import pytest
from mysql_mimic.types import Capabilities

from proxy.transport.tls import generate_rsa_key
from proxy.wire import scramble
from proxy.wire.handshake import (
    ChangeUser,
    Greeting,
    HandshakeResponse,
    make_auth_switch,
    make_greeting,
    make_handshake_response,
    parse_auth_switch,
    parse_change_user,
    parse_greeting,
    parse_handshake_response,
)
from proxy.wire.packets import (
    MAX_PAYLOAD,
    frame,
    lenenc_int,
    make_err,
    make_ok,
    ok_status,
    parse_err,
    read_lenenc_int,
)

NONCE = b"abcdefghij0123456789"


@pytest.mark.parametrize(
    "value", [0, 250, 251, 65535, 65536, (1 << 24) - 1, 1 << 24, (1 << 64) - 1]
)
def test_lenenc_int_round_trips(value: int) -> None:
    encoded = lenenc_int(value)
    assert read_lenenc_int(encoded + b"tail", 0) == (value, len(encoded))


def test_lenenc_int_rejects_the_null_and_err_prefixes() -> None:
    for prefix in (b"\xfb", b"\xff"):
        with pytest.raises(ValueError):
            read_lenenc_int(prefix, 0)


@pytest.mark.parametrize(
    "size", [0, 1, MAX_PAYLOAD - 1, MAX_PAYLOAD, MAX_PAYLOAD + 1, 2 * MAX_PAYLOAD]
)
def test_frame_splits_at_16_mib_and_ends_exact_multiples_with_an_empty_packet(size: int) -> None:
    data = frame(b"x" * size, 7)
    pos, seq, lengths = 0, 7, []
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 3], "little")
        assert data[pos + 3] == seq
        lengths.append(length)
        pos += 4 + length
        seq += 1
    assert sum(lengths) == size
    assert lengths[-1] < MAX_PAYLOAD
    assert all(n == MAX_PAYLOAD for n in lengths[:-1])


def test_err_round_trips_with_sqlstate() -> None:
    error = parse_err(make_err(1062, "23000", "Duplicate entry 'é' for key 'PRIMARY'"))
    assert (error.code, error.sqlstate, error.message) == (
        1062,
        "23000",
        "Duplicate entry 'é' for key 'PRIMARY'",
    )


def test_err_needs_a_five_character_sqlstate() -> None:
    with pytest.raises(ValueError):
        make_err(1105, "HY0", "x")


def test_ok_status_is_read_after_large_lenenc_counts() -> None:
    assert ok_status(make_ok(0x4003, affected_rows=1 << 40, last_insert_id=70000)) == 0x4003


def test_greeting_round_trips() -> None:
    greeting = Greeting(
        "5.5.5-10.11.19-MariaDB-mlproxy", 1 << 30, NONCE, 0x81FFF7FF, 45, 2, "caching_sha2_password"
    )
    assert parse_greeting(make_greeting(greeting)) == greeting


def test_handshake_response_round_trips_with_every_optional_part() -> None:
    caps = (
        Capabilities.CLIENT_PROTOCOL_41
        | Capabilities.CLIENT_SECURE_CONNECTION
        | Capabilities.CLIENT_PLUGIN_AUTH
        | Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | Capabilities.CLIENT_CONNECT_WITH_DB
        | Capabilities.CLIENT_CONNECT_ATTRS
    )
    response = HandshakeResponse(
        capabilities=int(caps),
        max_packet_size=1 << 24,
        collation=255,
        username="ünïcode".encode(),
        auth_response=bytes(range(32)),
        database=b"db",
        auth_plugin="caching_sha2_password",
        connect_attrs=lenenc_int(4) + b"_pid" + lenenc_int(2) + b"42",
    )
    assert parse_handshake_response(make_handshake_response(response)) == response


def test_ssl_request_is_recognised() -> None:
    request = HandshakeResponse(
        int(Capabilities.CLIENT_PROTOCOL_41 | Capabilities.CLIENT_SSL), 1 << 24, 33
    )
    request.is_ssl_request = True
    parsed = parse_handshake_response(make_handshake_response(request))
    assert parsed.is_ssl_request and parsed.collation == 33


@pytest.mark.parametrize("payload", [b"", b"\x00" * 10, b"\x00" * 40])
def test_malformed_handshake_responses_raise_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError):
        parse_handshake_response(payload)


def test_auth_switch_round_trips() -> None:
    assert parse_auth_switch(make_auth_switch("mysql_native_password", NONCE)) == (
        "mysql_native_password",
        NONCE,
    )


def test_change_user_is_parsed() -> None:
    caps = int(Capabilities.CLIENT_SECURE_CONNECTION | Capabilities.CLIENT_PLUGIN_AUTH)
    payload = (
        b"\x11bob\x00"
        + bytes((3,))
        + b"xyz"
        + b"db\x00"
        + (45).to_bytes(2, "little")
        + b"mysql_native_password\x00"
    )
    assert parse_change_user(payload, caps) == ChangeUser(
        b"bob", b"xyz", b"db", 45, "mysql_native_password", b""
    )


@pytest.mark.parametrize("password", [b"secret", "pässwörd🙂".encode(), b"x" * 100])
def test_scrambles_match_pymysql(password: bytes) -> None:
    assert scramble.native_scramble(password, NONCE) == pymysql_auth.scramble_native_password(
        password, NONCE
    )
    assert scramble.sha2_scramble(password, NONCE) == pymysql_auth.scramble_caching_sha2(
        password, NONCE
    )
    assert scramble.native_matches(password, NONCE, scramble.native_scramble(password, NONCE))
    assert not scramble.native_matches(
        password + b"!", NONCE, scramble.native_scramble(password, NONCE)
    )


def test_empty_password_scrambles_to_nothing() -> None:
    assert scramble.native_scramble(b"", NONCE) == b""
    assert scramble.sha2_scramble(b"", NONCE) == b""


def test_rsa_password_from_pymysql_is_decrypted() -> None:
    key = generate_rsa_key()
    ciphertext = pymysql_auth.sha2_rsa_encrypt(b"s3cret pw", NONCE, scramble.public_key_pem(key))
    assert scramble.rsa_decrypt_password(ciphertext, NONCE, key) == b"s3cret pw"


def test_rsa_password_round_trips_through_our_own_encryption() -> None:
    key = generate_rsa_key()
    ciphertext = scramble.rsa_encrypt_password(b"pw", NONCE, scramble.public_key_pem(key))
    assert scramble.rsa_decrypt_password(ciphertext, NONCE, key) == b"pw"
