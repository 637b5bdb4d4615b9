"""The Ssl_* status variables of the client's own connection (issue 11, item 5).

SHOW STATUS goes to the backend, whose Ssl_* variables of the connection describe the
proxy's session with it (TLS or not, the backend's certificate), not the client's
connection, which ends at the proxy. A server computes nine of them from the
connection's own TLS state; in every scope (SHOW GLOBAL STATUS shows the current
connection's too), so the proxy replaces those nine rows with its own connection's
values, as MariaDB computes them (sql/mysqld.cc, show_ssl_*):

=====================  ==========================================  =================
variable               over TLS                                    in the clear
=====================  ==========================================  =================
Ssl_cipher             the cipher the connection uses              ''
Ssl_cipher_list        the ciphers the proxy's TLS context offers  ''
Ssl_default_timeout    the TLS session timeout (OpenSSL's 7200)    0
Ssl_server_not_after   the proxy certificate's validity            ''
Ssl_server_not_before  (as OpenSSL prints an ASN.1 time)           ''
Ssl_sessions_reused    1 when the client resumed a session         0
Ssl_verify_depth       OpenSSL's default, unlimited (-1 unsigned)  0
Ssl_verify_mode        0: the proxy does not ask for client certs  0
Ssl_version            TLSv1.2, TLSv1.3                            ''
=====================  ==========================================  =================

The others (Ssl_accepts, Ssl_session_cache_*, Ssl_ctx_*...) count the server's whole
TLS context and stay the backend's. information_schema.SESSION_STATUS and
performance_schema's tables are the backend's (a SELECT the proxy does not rewrite).
"""

from __future__ import annotations

import datetime
import ssl

from cryptography import x509

#: OpenSSL's default verify depth, -1, as the server prints it (an unsigned long).
_UNLIMITED_DEPTH = str((1 << 64) - 1)
#: The TLS session timeout OpenSSL's TLS methods default to (seconds).
_DEFAULT_TIMEOUT = 7200
#: Python's verify modes as OpenSSL's SSL_VERIFY_* bits.
_VERIFY_MODE = {ssl.CERT_NONE: 0, ssl.CERT_OPTIONAL: 1, ssl.CERT_REQUIRED: 3}

CLEAR = {
    "Ssl_cipher": "",
    "Ssl_cipher_list": "",
    "Ssl_default_timeout": "0",
    "Ssl_server_not_after": "",
    "Ssl_server_not_before": "",
    "Ssl_sessions_reused": "0",
    "Ssl_verify_depth": "0",
    "Ssl_verify_mode": "0",
    "Ssl_version": "",
}
#: The session-scoped names, lower case (SHOW STATUS matches names case-insensitively).
SESSION_NAMES = frozenset(name.lower() for name in CLEAR)


def asn1_time(moment: datetime.datetime) -> str:
    """A time as OpenSSL's ASN1_TIME_print writes it.

    >>> asn1_time(datetime.datetime(2027, 1, 4, 7, 47, 45, tzinfo=datetime.UTC))
    'Jan  4 07:47:45 2027 GMT'
    """
    utc = moment.astimezone(datetime.UTC)
    return f"{utc:%b} {utc.day:2d} {utc:%H:%M:%S} {utc.year} GMT"


def certificate_validity(pem: bytes) -> tuple[str, str]:
    """(not before, not after) of the first certificate of a PEM chain; empty strings
    when there is none."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return "", ""
    return (
        asn1_time(certificate.not_valid_before_utc),
        asn1_time(certificate.not_valid_after_utc),
    )


def connection_status(
    tls: ssl.SSLObject | ssl.SSLSocket | None, certificate: bytes
) -> dict[str, str]:
    """The nine variables for a client connection: its TLS object (None in the clear)
    and the PEM of the certificate it was given."""
    if tls is None:
        return dict(CLEAR)
    cipher = tls.cipher()
    not_before, not_after = certificate_validity(certificate)
    return {
        "Ssl_cipher": cipher[0] if cipher else "",
        "Ssl_cipher_list": ":".join(c["name"] for c in tls.context.get_ciphers()),
        "Ssl_default_timeout": str(_DEFAULT_TIMEOUT),
        "Ssl_server_not_after": not_after,
        "Ssl_server_not_before": not_before,
        "Ssl_sessions_reused": "1" if tls.session_reused else "0",
        "Ssl_verify_depth": _UNLIMITED_DEPTH,
        "Ssl_verify_mode": str(_VERIFY_MODE.get(tls.context.verify_mode, 0)),
        "Ssl_version": tls.version() or "",
    }
