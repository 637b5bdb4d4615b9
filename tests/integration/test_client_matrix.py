"""The client matrix (issue 11): the same steps with client libraries of eight ecosystems,
directly against MariaDB (the oracle) and through the proxy, compared step by step.

Each client's script (tests/integration/clients/, whose README lists the steps) runs twice
against a MariaDB of this module's own, started by the suite's launcher with TLS (a
certificate for 127.0.0.1 that clients verify, also the proxy's): once directly, in a
database where the two ML functions are stored functions answering the local model's
answers (computed here in Python), once through an in-process proxy in a database without
them. A step passes when the proxy's line equals the direct one. A step that also fails
directly is listed in ``FAILS_DIRECTLY`` with the reason and reported as an xfail (an
entry that starts passing directly fails, so the list stays true).

Each client logs in with an account created for this run, and the proxy is new, so the
client's first login through it takes the full authentication path (checked: the proxy
holds no password for the account before the run).

A client whose toolchain is missing is skipped with what to install, except in CI
(``CI=true``), where ``./dev test`` installs every toolchain and a missing one is an error.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pytest

from proxy.embedded_db import EmbeddedServer, start_embedded_server
from proxy.transport.tls import generate_rsa_key, private_key_pem, self_signed_certificate
from tests.conftest import RunningProxy, start_proxy
from tests.support.backend import BackendInfo
from tests.support.client_matrix import (
    STEPS,
    Client,
    ClientRun,
    build,
    clients,
    create_account,
    missing_toolchain,
    ml_texts,
    model_answers,
    prepare_database,
    run_client,
)

DIRECT_DB, PROXY_DB = "mx_direct", "mx_proxy"
CLIENTS = {client.name: client for client in clients()}

#: (client, step) pairs that fail directly against MariaDB too, with the reason.
FAILS_DIRECTLY: dict[tuple[str, str], str] = {
    ("pymysql", "server_prepared"): "PyMySQL has no server-side prepared statements",
    ("asyncmy", "server_prepared"): "asyncmy has no server-side prepared statements",
}


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """One self-signed certificate (its own CA) for 127.0.0.1, shown by MariaDB and the
    proxy alike, so a client verifies both with the same CA file."""
    folder = tmp_path_factory.mktemp("matrix-tls")
    key = generate_rsa_key()
    cert = self_signed_certificate(
        key, "mlproxy-matrix", ip_addresses=("127.0.0.1",), dns_names=("localhost",), days=2
    )
    (folder / "cert.pem").write_bytes(cert)
    (folder / "key.pem").write_bytes(private_key_pem(key))
    return Certificate(folder / "cert.pem", folder / "key.pem")


@pytest.fixture(scope="module")
def matrix_backend(certificate: Certificate) -> Iterator[BackendInfo]:
    """The suite's MariaDB build, with TLS, and the two databases of the steps."""
    server: EmbeddedServer = start_embedded_server(
        extra_args=[f"--ssl-cert={certificate.cert}", f"--ssl-key={certificate.key}"]
    )
    info = BackendInfo(server.host, server.port, server.admin_user, server.admin_password, server)
    try:
        with pymysql.connect(
            host=info.host,
            port=info.port,
            user=info.admin_user,
            password=info.admin_password,
            autocommit=True,
            charset="utf8mb4",
        ) as admin:
            prepare_database(admin, DIRECT_DB, model_answers())
            prepare_database(admin, PROXY_DB, None)
        yield info
    finally:
        server.stop()


@pytest.fixture(scope="module")
def matrix_proxy(matrix_backend: BackendInfo, certificate: Certificate) -> Iterator[RunningProxy]:
    running = start_proxy(
        matrix_backend, tls_cert=str(certificate.cert), tls_key=str(certificate.key)
    )
    yield running
    running.stop()


@dataclass
class Runs:
    """Each client's two runs, made when its first step is tested."""

    backend: BackendInfo
    proxy: RunningProxy
    ca: Path
    build_dir: Path
    done: dict[str, tuple[ClientRun, ClientRun] | str] = field(default_factory=dict)

    def get(self, client: Client) -> tuple[ClientRun, ClientRun]:
        if client.name not in self.done:
            self.done[client.name] = missing_toolchain(client) or self._run(client)
        result = self.done[client.name]
        if isinstance(result, str):
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI must run every client of the matrix: {result}")
            pytest.skip(result)
        return result

    def _run(self, client: Client) -> tuple[ClientRun, ClientRun]:
        build(client, self.build_dir)
        user = "mx_" + client.name.replace("-", "_")
        password = "mx-" + secrets.token_hex(8)
        with pymysql.connect(
            host=self.backend.host,
            port=self.backend.port,
            user=self.backend.admin_user,
            password=self.backend.admin_password,
            autocommit=True,
        ) as admin:
            create_account(admin, user, password, (DIRECT_DB, PROXY_DB))
        account = {"MX_USER": user, "MX_PASSWORD": password, "MX_TLS_CA": str(self.ca)}
        direct = run_client(
            client, self._server(self.backend.port, DIRECT_DB, account), self.build_dir
        )
        assert self.proxy.server is not None and self.proxy.server.ctx is not None
        # The first login through the proxy must take the full authentication path.
        assert self.proxy.server.ctx.auth.passwords.get(user.encode()) is None
        through = run_client(
            client, self._server(self.proxy.port, PROXY_DB, account), self.build_dir
        )
        return direct, through

    @staticmethod
    def _server(port: int, database: str, account: dict[str, str]) -> dict[str, str]:
        return {"MX_HOST": "127.0.0.1", "MX_PORT": str(port), "MX_DATABASE": database} | account


@pytest.fixture(scope="module")
def runs(
    matrix_backend: BackendInfo,
    matrix_proxy: RunningProxy,
    certificate: Certificate,
    tmp_path_factory: pytest.TempPathFactory,
) -> Runs:
    return Runs(matrix_backend, matrix_proxy, certificate.cert, tmp_path_factory.mktemp("matrix"))


def _expected_ml(step: str) -> object:
    """What the direct side's stored functions must answer: the local model's answers."""
    answers = model_answers()
    if step == "ml_column":
        return [answers[text][0] for text in ml_texts()]
    return None


@pytest.mark.parametrize(
    ("client_name", "step"),
    [(name, step) for name in CLIENTS for step in STEPS],
)
def test_client_step(client_name: str, step: str, runs: Runs) -> None:
    direct_run, proxy_run = runs.get(CLIENTS[client_name])
    direct, through = direct_run.step(step), proxy_run.step(step)
    known = FAILS_DIRECTLY.get((client_name, step))
    if known is not None:
        assert not direct.ok, f"listed as failing directly, but passes directly now: {direct}"
        assert not through.ok, f"fails directly ({known}) but passes through the proxy"
        pytest.xfail(f"fails directly too: {known}")
    assert direct.ok, f"fails directly (not listed in FAILS_DIRECTLY): {direct.detail}"
    if step == "ml_column":
        assert direct.detail["labels"] == _expected_ml(step)
    assert through.ok, f"through the proxy: {through.detail}\ndirectly: {direct.detail}"
    assert through.detail == direct.detail
