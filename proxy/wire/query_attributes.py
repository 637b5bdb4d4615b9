"""MySQL 8's query attributes (CLIENT_QUERY_ATTRIBUTES, 8.0.23+): where a COM_QUERY's
text starts, and the empty block before the statements the proxy writes itself.

Implements the attribute block of page_protocol_com_query. With the capability, every
COM_QUERY carries before its text: the number of attributes, the number of attribute
sets (always 1) and, when there are attributes, a null bitmap, the new-params-bound flag
(1), each attribute's type and name, and the values that are not NULL in the binary
protocol's encoding (page_protocol_binary_resultset). COM_STMT_EXECUTE carries them
after the statement's parameters (proxy.wire.binary_params).

The proxy offers the capability when the backend does (MariaDB never does, so neither
does the proxy in front of it), and relays a client's block as it is: it only needs
where the text starts, to look for ML calls. The statements of the proxy's own making
(an ML statement's rewrites, its look-ups) carry an empty block: a client's attributes
do not follow its ML statements into them.
"""

from __future__ import annotations

from mysql_mimic.types import ColumnType

from proxy.wire.binary_params import MalformedParameters, Reader

#: A COM_QUERY's block without attributes: none, in one set.
NO_ATTRIBUTES = b"\x00\x01"

#: Binary-protocol values of a fixed size (NULL's is none).
_FIXED_SIZES = {
    int(ColumnType.NULL): 0,
    int(ColumnType.TINY): 1,
    int(ColumnType.SHORT): 2,
    int(ColumnType.YEAR): 2,
    int(ColumnType.LONG): 4,
    int(ColumnType.INT24): 4,
    int(ColumnType.FLOAT): 4,
    int(ColumnType.LONGLONG): 8,
    int(ColumnType.DOUBLE): 8,
}
#: Temporal values: a length byte, then that many bytes (TIMESTAMP2, DATETIME2, TIME2 too).
_LENGTH_BYTE = frozenset(
    {
        int(ColumnType.TIMESTAMP),
        int(ColumnType.DATE),
        int(ColumnType.TIME),
        int(ColumnType.DATETIME),
        17,
        18,
        19,
    }
)


def query_head(attributes: bool) -> bytes:
    """What precedes the text of a COM_QUERY the proxy writes on a connection."""
    return b"\x03" + NO_ATTRIBUTES if attributes else b"\x03"


def query_text(payload: bytes, attributes: bool) -> bytes | None:
    """A COM_QUERY's statement text (the payload includes the command byte); None when
    its attribute block does not follow the layout (the backend answers that one).

    >>> query_text(b"\\x03SELECT 1", False)
    b'SELECT 1'
    >>> query_text(b"\\x03\\x00\\x01SELECT 1", True)
    b'SELECT 1'
    >>> query_text(b"\\x03\\x01\\x01\\x00\\x01\\xfe\\x00\\x01a\\x02hiSELECT 1", True)
    b'SELECT 1'
    >>> query_text(b"\\x03\\x01\\x01\\x00", True) is None
    True
    """
    if not attributes:
        return payload[1:]
    reader = Reader(payload, 1)
    try:
        count = reader.lenenc_int()
        reader.lenenc_int()  # the number of sets, always 1
        if count:
            _skip_attributes(reader, count)
    except MalformedParameters:
        return None
    return payload[reader.pos :]


def _skip_attributes(reader: Reader, count: int) -> None:
    nulls = reader.take((count + 7) // 8)
    if reader.byte() != 1:  # no types: the values cannot be read
        raise MalformedParameters("query attributes without their types")
    kinds = []
    for _ in range(count):
        kinds.append(reader.take(2)[0])
        reader.lenenc_bytes()  # the name
    for index, kind in enumerate(kinds):
        if not nulls[index // 8] & (1 << (index % 8)):
            _skip_value(reader, kind)


def _skip_value(reader: Reader, kind: int) -> None:
    """Past one value; any other type is a length-encoded string, as the server reads
    strings, decimals, JSON and BLOBs."""
    size = _FIXED_SIZES.get(kind)
    if size is None:
        size = reader.byte() if kind in _LENGTH_BYTE else reader.lenenc_int()
    reader.take(size)
