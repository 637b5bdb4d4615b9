"""TLS for clients (a configured certificate, or a generated self-signed one) and backends."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def generate_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed_certificate(
    key: rsa.RSAPrivateKey,
    common_name: str = "mlproxy",
    *,
    ip_addresses: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    days: int = 3650,
) -> bytes:
    """A PEM certificate signed by its own key, and so its own CA: valid for ``days`` and
    for the given addresses and names (none: for clients that encrypt without verifying)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    names += [x509.DNSName(n) for n in dns_names]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def certificate_names(listen_host: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(IP addresses, DNS names) a generated certificate is valid for: the listening
    address, the loopback names and the host's name, so that a client which checks the
    host name (and trusts the certificate) connects by any of them. No name is looked
    up: a slow resolver must not delay the start."""
    ips = {"127.0.0.1", "::1"}
    names = {"localhost"}
    for host in (listen_host, socket.gethostname()):
        if not host or host in ("0.0.0.0", "::"):
            continue
        try:
            ips.add(str(ipaddress.ip_address(host)))
        except ValueError:
            names.add(host)
    return tuple(sorted(ips)), tuple(sorted(names))


def server_context(
    cert_file: str | None,
    key_file: str | None,
    key: rsa.RSAPrivateKey,
    listen_host: str = "127.0.0.1",
) -> tuple[ssl.SSLContext, bytes]:
    """The context clients' TLS connections terminate in, and the PEM of its certificate
    chain (what Ssl_server_not_before/after describe, proxy.session.ssl_status)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
        return context, Path(cert_file).read_bytes()
    # ssl only loads certificates from files: write the generated pair to a private temp dir.
    ips, names = certificate_names(listen_host)
    certificate = self_signed_certificate(key, ip_addresses=ips, dns_names=names)
    with tempfile.TemporaryDirectory(prefix="mlproxy-tls-") as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_path.write_bytes(certificate)
        key_path.write_bytes(private_key_pem(key))
        context.load_cert_chain(str(cert_path), str(key_path))
    return context, certificate


def backend_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """The context for TLS to the backend; unverified unless a CA is given or asked for."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify and not ca_file:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
