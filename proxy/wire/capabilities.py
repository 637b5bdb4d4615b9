"""Capability flags beyond mysql_mimic's 32 bits: MariaDB's extended capabilities, and
the shape of the result sets each side of the relay agreed on.

MariaDB extends the 32 capability bits of the protocol with 32 more, carried in bytes
the MySQL protocol reserves (the last four of the greeting's ten reserved bytes, the
last four of the handshake response's 23 filler bytes), and only when the other side
has not set CLIENT_MYSQL (bit 0, CLIENT_LONG_PASSWORD to MySQL): a MariaDB server
greets without it, a MariaDB client answering a MariaDB server leaves it out. The proxy
keeps capabilities as one 64-bit int, MariaDB's bits shifted up by 32, as MariaDB's own
server does (``thd->client_capabilities``).

Which capabilities the proxy relays, and why (docs/architecture.md, "How a statement travels"):

- CLIENT_DEPRECATE_EOF: results end with an OK packet whose header is 0xFE instead of an
  EOF packet, and column definitions have no EOF after them. The relay's scanner and the
  proxy's own readers follow either shape (proxy.wire.result_shape).
- MARIADB_CLIENT_EXTENDED_METADATA: a column definition carries the type's extended
  information (``format=json``, ``type=uuid``, ``type=inet6``...) after org_name. The
  proxy never reads a column definition's fields after its name, so it relays them as
  they are.
- MARIADB_CLIENT_CACHE_METADATA: a result's column count is followed by a byte saying
  whether the column definitions follow; a prepared statement's execution leaves them
  out when the client already has them (from its PREPARE or an earlier execution). An
  ML prepared statement runs as another statement of the proxy's making, so the proxy
  makes sure its client always gets the definitions (proxy.transport.metadata_relay).

- CLIENT_QUERY_ATTRIBUTES (MySQL 8.0.23+): named values before each COM_QUERY's text and
  after a COM_STMT_EXECUTE's parameters. The proxy reads past them to the text and the
  parameters (proxy.wire.query_attributes) and writes an empty block before the
  statements of its own making. MariaDB has none: in front of it the proxy never offers
  the flag.

Not relayed: MARIADB_CLIENT_PROGRESS (progress packets are ERR
packets with code 0xFFFF in the middle of a response), MARIADB_CLIENT_STMT_BULK_OPERATIONS
(COM_STMT_BULK_EXECUTE, which the proxy would have to run for ML prepared statements
too), compression, and CLIENT_OPTIONAL_RESULTSET_METADATA.
"""

from __future__ import annotations

from mysql_mimic.types import Capabilities

#: Bit 0: a client or server that is not MariaDB-extended (MySQL's CLIENT_LONG_PASSWORD).
CLIENT_MYSQL = int(Capabilities.CLIENT_LONG_PASSWORD)
CLIENT_DEPRECATE_EOF = int(Capabilities.CLIENT_DEPRECATE_EOF)
CLIENT_QUERY_ATTRIBUTES = int(Capabilities.CLIENT_QUERY_ATTRIBUTES)

MARIADB_CLIENT_PROGRESS = 1 << 32
MARIADB_CLIENT_STMT_BULK_OPERATIONS = 1 << 34
MARIADB_CLIENT_EXTENDED_METADATA = 1 << 35
MARIADB_CLIENT_CACHE_METADATA = 1 << 36

#: MariaDB's capabilities the proxy relays (see the module docstring).
RELAYABLE_MARIADB = MARIADB_CLIENT_EXTENDED_METADATA | MARIADB_CLIENT_CACHE_METADATA

#: Capabilities that change the bytes of a response or of a command: the client's and its
#: backend connection's must agree on each, or the relayed bytes would not be what the
#: other side reads.
SHAPING = (
    CLIENT_DEPRECATE_EOF
    | CLIENT_QUERY_ATTRIBUTES
    | MARIADB_CLIENT_EXTENDED_METADATA
    | MARIADB_CLIENT_CACHE_METADATA
)

_LOW = 0xFFFFFFFF


def extended(capabilities: int) -> int:
    """MariaDB's 32 extended bits, as they travel (the high half, shifted down)."""
    return (capabilities >> 32) & _LOW


def with_extended(low: int, extended_bits: int) -> int:
    """The 64-bit capabilities of a packet's 32 bits and its MariaDB extended bits,
    which count only where the packet did not set CLIENT_MYSQL.

    >>> hex(with_extended(0x81FFF7FE, 0x1D))
    '0x1d81fff7fe'
    >>> with_extended(CLIENT_MYSQL, 0x1D)
    1
    """
    if low & CLIENT_MYSQL:
        return low & _LOW
    return (low & _LOW) | (extended_bits & _LOW) << 32


def names(capabilities: int) -> str:
    """The shaping capabilities set, for log lines."""
    found = [
        name
        for bit, name in (
            (CLIENT_DEPRECATE_EOF, "DEPRECATE_EOF"),
            (CLIENT_QUERY_ATTRIBUTES, "QUERY_ATTRIBUTES"),
            (MARIADB_CLIENT_EXTENDED_METADATA, "EXTENDED_METADATA"),
            (MARIADB_CLIENT_CACHE_METADATA, "CACHE_METADATA"),
        )
        if capabilities & bit
    ]
    return ", ".join(found) or "none"
