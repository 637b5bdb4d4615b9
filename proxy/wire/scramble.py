"""Password scrambles of the MySQL authentication plugins, both directions.

mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))).
caching_sha2_password fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce);
full path: the password in clear over TLS, or RSA-OAEP encrypted after XOR with the nonce.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

NATIVE = "mysql_native_password"
CACHING_SHA2 = "caching_sha2_password"
CLEAR = "mysql_clear_password"

# caching_sha2_password's one-byte messages inside AuthMoreData packets.
SHA2_REQUEST_PUBLIC_KEY = b"\x02"
SHA2_FAST_AUTH_OK = b"\x03"
SHA2_FULL_AUTH_NEEDED = b"\x04"


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=False))


def native_scramble(password: bytes, nonce: bytes) -> bytes:
    """The client's mysql_native_password answer (empty for an empty password)."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password).digest()
    stage2 = hashlib.sha1(stage1).digest()
    return _xor(stage1, hashlib.sha1(nonce[:20] + stage2).digest())


def native_scramble_from_stage1(stage1: bytes, nonce: bytes) -> bytes:
    """The same answer from SHA1(password) alone: how the proxy logs in to the backend
    for a client whose password it never saw (proxy.auth.native_accounts)."""
    stage2 = hashlib.sha1(stage1).digest()
    return _xor(stage1, hashlib.sha1(nonce[:20] + stage2).digest())


def native_matches(password: bytes, nonce: bytes, answer: bytes) -> bool:
    """Whether a client's mysql_native_password answer proves knowledge of ``password``."""
    return hmac.compare_digest(native_scramble(password, nonce), answer)


def sha2_scramble(password: bytes, nonce: bytes) -> bytes:
    """The client's caching_sha2_password fast-path answer."""
    if not password:
        return b""
    stage1 = hashlib.sha256(password).digest()
    stage2 = hashlib.sha256(stage1).digest()
    return _xor(stage1, hashlib.sha256(stage2 + nonce[:20]).digest())


def _xor_with_nonce(data: bytes, nonce: bytes) -> bytes:
    nonce = nonce[:20]
    return bytes(b ^ nonce[i % len(nonce)] for i, b in enumerate(data))


def rsa_encrypt_password(password: bytes, nonce: bytes, public_key_pem: bytes) -> bytes:
    """Encrypt a password for caching_sha2_password's full path without TLS."""
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("server public key is not an RSA key")
    return key.encrypt(_xor_with_nonce(password + b"\x00", nonce), _oaep())


def rsa_decrypt_password(ciphertext: bytes, nonce: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """Recover the password a client sent RSA-encrypted (raises ValueError on bad input)."""
    plain = private_key.decrypt(ciphertext, _oaep())
    return _xor_with_nonce(plain, nonce).rstrip(b"\x00")


def _oaep() -> padding.OAEP:
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None
    )


def public_key_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
