"""TLS from the proxy to the backend (--backend-tls, --backend-tls-ca).

The backend here refuses plaintext (require_secure_transport), so a session that works
proves the proxy's backend connection is encrypted; the backend's own Ssl_cipher says so too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from proxy.embedded_db import EmbeddedServer, run_sql, start_embedded_server
from proxy.transport.tls import generate_rsa_key, private_key_pem, self_signed_certificate
from tests.conftest import RunningProxy, start_proxy
from tests.support.backend import BackendInfo

USER, PASSWORD = "tls_app", "tls-pw"


def write_certificate(folder: Path, san_ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``san_ip`` (it is its own CA), and its key."""
    key = generate_rsa_key()
    cert_path, key_path = folder / "backend-cert.pem", folder / "backend-key.pem"
    cert_path.write_bytes(
        self_signed_certificate(key, "mlproxy-test-backend", ip_addresses=(san_ip,), days=30)
    )
    key_path.write_bytes(private_key_pem(key))
    return cert_path, key_path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_certificate(tmp_path_factory.mktemp("backend-tls"))


@pytest.fixture(scope="module")
def tls_backend(certificate: tuple[Path, Path]) -> Iterator[BackendInfo]:
    cert, key = certificate
    server: EmbeddedServer = start_embedded_server(
        extra_args=[f"--ssl-cert={cert}", f"--ssl-key={key}", "--require-secure-transport=ON"]
    )
    try:
        run_sql(server, f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
        yield BackendInfo(
            server.host, server.port, server.admin_user, server.admin_password, server
        )
    finally:
        server.stop()


def connect(proxy: RunningProxy) -> pymysql.Connection[Any]:
    return pymysql.connect(host=proxy.host, port=proxy.port, user=USER, password=PASSWORD)


def backend_cipher(connection: pymysql.Connection[Any]) -> str:
    with connection.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
    assert row is not None
    return str(row[1])


def test_backend_tls_encrypts_the_backend_session(
    tls_backend: BackendInfo, proxy_loop: str
) -> None:
    proxy = start_proxy(tls_backend, backend_tls=True, loop=proxy_loop)
    try:
        with connect(proxy) as connection:
            assert backend_cipher(connection)  # the backend sees an encrypted session
    finally:
        proxy.stop()


def test_without_backend_tls_the_client_gets_the_backends_own_refusal(
    tls_backend: BackendInfo, proxy_loop: str
) -> None:
    with pytest.raises(pymysql.err.OperationalError) as direct:
        pymysql.connect(
            host=tls_backend.host,
            port=tls_backend.port,
            user=USER,
            password=PASSWORD,
            ssl_disabled=True,
        )
    proxy = start_proxy(tls_backend, loop=proxy_loop)
    try:
        with pytest.raises(pymysql.err.OperationalError) as through:
            connect(proxy)
    finally:
        proxy.stop()
    assert through.value.args[0] == direct.value.args[0]
    # The message names the client's address, which differs: compare it without that.
    assert through.value.args[1].split("@")[0] == direct.value.args[1].split("@")[0]


def test_backend_certificate_is_verified_against_the_given_ca(
    tls_backend: BackendInfo, certificate: tuple[Path, Path], proxy_loop: str
) -> None:
    ca = str(certificate[0])
    proxy = start_proxy(tls_backend, backend_tls=True, backend_tls_ca=ca, loop=proxy_loop)
    try:
        with connect(proxy) as connection:
            assert backend_cipher(connection)
    finally:
        proxy.stop()


def test_a_backend_certificate_from_another_ca_is_refused(
    tls_backend: BackendInfo, tmp_path: Path, proxy_loop: str
) -> None:
    stranger, _ = write_certificate(tmp_path)
    ca = str(stranger)
    proxy = start_proxy(tls_backend, backend_tls=True, backend_tls_ca=ca, loop=proxy_loop)
    try:
        with pytest.raises(pymysql.err.OperationalError) as caught:
            connect(proxy)
        code, message = caught.value.args
        assert code == 2026  # CR_SSL_CONNECTION_ERROR, as a MySQL client reports it
        assert "certificate" in message.lower()
    finally:
        proxy.stop()
