"""Admission: what a client may hold before and after it has logged in.

A socket that has not logged in costs the proxy a file descriptor, a task and a greeting,
and nothing on the backend (the greeting is the proxy's own, proxy.wire.greeting): the
backend is first contacted with the client's credentials. What it may hold is bounded
all the same, so that sockets which never log in (a flood, or slowloris-style clients
sending a byte now and then until the handshake timeout) cannot keep others from
logging in:

- logins in progress, overall (``max_pending_logins``) and per source address
  (``max_pending_logins_per_address``; an IPv6 client counts by its /64, which one
  host usually holds whole);
- logged-in sessions (``max_connections``), checked at accept time (a full proxy
  answers 1040 instead of a greeting, as MySQL does) and again once the client has said
  who it is (logins in progress do not count against it).

A client over a limit gets ERR 1040 "Too many connections" with the reason, in place of
the greeting, and is closed at once.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter

from proxy.errors import TooManyConnections

log = logging.getLogger(f"mlproxy.{__name__}")

#: Refusals are logged at most this often (a flood would otherwise flood the log too).
REFUSAL_LOG_INTERVAL = 10.0


def source_key(host: str) -> str:
    """The key a source address counts under: an IPv4 address itself, an IPv6 one by its
    /64 (an IPv4-mapped IPv6 address as the IPv4 address).

    >>> source_key("192.0.2.7"), source_key("2001:db8::1"), source_key("::ffff:192.0.2.7")
    ('192.0.2.7', '2001:db8::/64', '192.0.2.7')
    """
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host  # not an IP address (a unix socket peer): one key per name
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class PendingLogin:
    """One admitted login in progress; ``leave()`` gives its place back (idempotent)."""

    def __init__(self, gate: LoginGate, key: str) -> None:
        self._gate = gate
        self.key = key
        self._left = False

    def leave(self) -> None:
        if not self._left:
            self._left = True
            self._gate._leave(self.key)


class LoginGate:
    """Counts logins in progress (overall and per source) and logged-in sessions."""

    def __init__(self, max_pending: int, max_pending_per_address: int, max_sessions: int) -> None:
        self.max_pending = max_pending
        self.max_pending_per_address = max_pending_per_address
        self.max_sessions = max_sessions
        self.pending = 0
        self.sessions = 0
        self._by_source: Counter[str] = Counter()
        self._refused = 0
        self._refusals_logged_at = -REFUSAL_LOG_INTERVAL

    def enter(self, host: str) -> PendingLogin:
        """Admit a new connection's login, or raise TooManyConnections."""
        key = source_key(host)
        if self.sessions >= self.max_sessions:
            self._refuse("Too many connections", host)
        if self.pending >= self.max_pending:
            self._refuse("Too many connections: too many logins in progress", host)
        if self._by_source[key] >= self.max_pending_per_address:
            self._refuse(f"Too many connections: too many logins in progress from {host}", host)
        self.pending += 1
        self._by_source[key] += 1
        return PendingLogin(self, key)

    def open_session(self) -> None:
        """A client has said who it is: count its session, or raise TooManyConnections."""
        if self.sessions >= self.max_sessions:
            self._refuse("Too many connections", "a client that logged in")
        self.sessions += 1

    def close_session(self) -> None:
        self.sessions -= 1

    def _leave(self, key: str) -> None:
        self.pending -= 1
        self._by_source[key] -= 1
        if not self._by_source[key]:
            del self._by_source[key]  # the counter holds only sources with logins in progress

    def _refuse(self, reason: str, host: str) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._refusals_logged_at >= REFUSAL_LOG_INTERVAL:
            log.warning(
                "connection from %s refused: %s (%d refused since the last such message; "
                "%d sessions, %d logins in progress)",
                host,
                reason,
                self._refused,
                self.sessions,
                self.pending,
            )
            self._refused = 0
            self._refusals_logged_at = now
        raise TooManyConnections(reason)
