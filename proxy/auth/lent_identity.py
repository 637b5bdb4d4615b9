"""The proxy's own OS identity must never log a client in.

Over a unix socket the backend can see who connects: MariaDB's ``unix_socket``
authentication (and MySQL's ``auth_socket``) accept an account whose name is the peer's
OS user, without a password. Through the proxy the peer is always the proxy's process,
so when the backend is reached over its unix socket, a client naming the account that
matches the proxy's OS user (``root`` for a proxy run as root: MariaDB creates
``root@localhost`` that way) would be let in with any password. The proxy refuses that
account on such backends instead (1045, as a wrong password), says so at start-up, and
over TCP, where the backend cannot see the peer's OS user, nothing changes.

MySQL's ``auth_socket`` may also map another account name to an OS user (``AS
'os_user'``); such accounts are not detected: reach such a backend over TCP.
"""

from __future__ import annotations

import logging
import os
import pwd

from proxy.errors import AuthenticationFailed
from proxy.upstream.backend import BackendAddress

log = logging.getLogger(f"mlproxy.{__name__}")


def os_user() -> str:
    """The proxy process's effective OS user name."""
    return pwd.getpwuid(os.geteuid()).pw_name


def lent_account(backend: BackendAddress) -> str | None:
    """The account a client must not use through this proxy, or None (a TCP backend)."""
    return os_user() if backend.unix_socket else None


def refuse_lent_identity(user: bytes, backend: BackendAddress) -> None:
    """AuthenticationFailed when ``user`` is the account the backend would accept on
    the proxy's OS identity alone."""
    account = lent_account(backend)
    if account is not None and user == account.encode():
        log.warning(
            "login as %r refused: the backend is reached over its unix socket as OS user"
            " %r, where socket authentication would accept any password (use TCP to allow it)",
            account,
            account,
        )
        raise AuthenticationFailed(
            f"Access denied for user '{account}' (through mlproxy: see the proxy's log)"
        )


def warn_at_start(backend: BackendAddress) -> None:
    account = lent_account(backend)
    if account is not None:
        log.warning(
            "the backend is reached over its unix socket as OS user %r: clients cannot log in"
            " as account %r through this proxy (socket authentication would accept them"
            " without a password); reach the backend over TCP to allow it",
            account,
            account,
        )
