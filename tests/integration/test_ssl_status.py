"""SHOW STATUS's Ssl_* variables describe the client's own connection (issue 11, item 5).

The oracle is a TLS-enabled MariaDB: the proxy in front of it serves the same
certificate, and the same client with the same TLS settings reads the variables directly
and through the proxy. Two setups make the old behaviour (the proxy-to-backend session's
values) visible: a TLS client with a plaintext backend connection, and a plaintext
client with a TLS backend connection.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from proxy.embedded_db import EmbeddedServer, run_sql, start_embedded_server
from proxy.session.ssl_status import SESSION_NAMES
from tests.conftest import RunningProxy, start_proxy
from tests.integration.test_backend_tls import write_certificate
from tests.support.backend import BackendInfo

USER, PASSWORD = "ssl_status", "ssl-status-pw"
#: Where the proxy's TLS necessarily differs from MariaDB's own (its TLS configuration):
#: the cipher list of its context, and whether it asks clients for certificates.
CONFIGURATION = {"ssl_cipher_list", "ssl_verify_mode"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_certificate(tmp_path_factory.mktemp("ssl-status"))


@pytest.fixture(scope="module")
def tls_backend(certificate: tuple[Path, Path]) -> Iterator[BackendInfo]:
    cert, key = certificate
    server: EmbeddedServer = start_embedded_server(
        extra_args=[f"--ssl-cert={cert}", f"--ssl-key={key}"]
    )
    try:
        run_sql(server, f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
        yield BackendInfo(
            server.host, server.port, server.admin_user, server.admin_password, server
        )
    finally:
        server.stop()


@pytest.fixture(scope="module", params=[False, True], ids=["plain-backend", "tls-backend"])
def tls_proxy(
    request: pytest.FixtureRequest, tls_backend: BackendInfo, certificate: tuple[Path, Path]
) -> Iterator[RunningProxy]:
    cert, key = certificate
    running = start_proxy(
        tls_backend, tls_cert=str(cert), tls_key=str(key), backend_tls=request.param
    )
    yield running
    running.stop()


def ssl_status(port: int, certificate: Path | None, statement: str) -> dict[str, str]:
    """The Ssl_* rows a client sees (TLS verified against ``certificate``, or none)."""
    options: dict[str, Any] = {"ssl_disabled": True}
    if certificate is not None:
        options = {"ssl_ca": str(certificate), "ssl_verify_identity": True}
    conn = pymysql.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, **options)
    with conn, conn.cursor() as cur:
        cur.execute(statement)
        return {str(name): str(value) for name, value in cur.fetchall()}


def proxy_cipher_list(proxy: RunningProxy) -> str:
    assert proxy.server is not None and proxy.server.ctx is not None
    context = proxy.server.ctx.auth.tls
    assert context is not None
    return ":".join(c["name"] for c in context.get_ciphers())


@pytest.mark.parametrize(
    "statement",
    [
        "SHOW STATUS LIKE 'Ssl_%'",
        "SHOW SESSION STATUS LIKE 'ssl%'",
        "SHOW GLOBAL STATUS LIKE 'Ssl_%'",
        "SHOW STATUS",
    ],
)
@pytest.mark.parametrize("tls", [True, False], ids=["tls-client", "plain-client"])
def test_ssl_variables_describe_the_clients_connection(
    tls_proxy: RunningProxy,
    tls_backend: BackendInfo,
    certificate: tuple[Path, Path],
    statement: str,
    tls: bool,
) -> None:
    cert = certificate[0] if tls else None
    through = ssl_status(tls_proxy.port, cert, statement)
    direct = ssl_status(tls_backend.port, cert, statement)
    session = {name for name in direct if name.lower() in SESSION_NAMES}
    assert len(session) == 9
    for name in session - {n for n in session if n.lower() in CONFIGURATION}:
        assert through[name] == direct[name], name
    if tls:
        assert through["Ssl_cipher"] and through["Ssl_version"].startswith("TLSv1.")
        assert through["Ssl_cipher_list"] == proxy_cipher_list(tls_proxy)
        assert through["Ssl_verify_mode"] == "0"  # the proxy asks for no client certificate
    else:
        assert through["Ssl_cipher"] == through["Ssl_cipher_list"] == ""
        assert through["Ssl_cipher_list"] == direct["Ssl_cipher_list"]
        assert through["Ssl_verify_mode"] == direct["Ssl_verify_mode"]


def test_the_client_side_values_come_from_its_own_tls_object(
    tls_proxy: RunningProxy, certificate: tuple[Path, Path]
) -> None:
    """The cipher and version the client's own socket negotiated."""
    context = ssl.create_default_context(cafile=str(certificate[0]))
    conn = pymysql.connect(
        host="127.0.0.1", port=tls_proxy.port, user=USER, password=PASSWORD, ssl=context
    )
    with conn, conn.cursor() as cur:
        cur.execute("SHOW STATUS LIKE 'Ssl_c%'")
        rows = dict(cur.fetchall())
        sock = conn._sock
        assert isinstance(sock, ssl.SSLSocket)
        cipher = sock.cipher()
        assert cipher is not None
        assert rows["Ssl_cipher"] == cipher[0]
        cur.execute("SHOW STATUS LIKE 'Ssl_version'")
        assert cur.fetchall() == (("Ssl_version", sock.version()),)
