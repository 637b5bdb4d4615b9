"""SQL types as the ML DDL accepts them: names, synonyms, and what each alias kind allows."""

from __future__ import annotations

import re
from dataclasses import dataclass


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _name(name: str) -> str:
    """A charset or collation name: bare when it can be, else backticked."""
    return name if re.fullmatch(r"[a-z0-9_]+", name) else _ident(name)


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# --- types -----------------------------------------------------------------------------

_SYNONYMS = {
    "INTEGER": "INT",
    "INT1": "TINYINT",
    "INT2": "SMALLINT",
    "INT3": "MEDIUMINT",
    "MIDDLEINT": "MEDIUMINT",
    "INT4": "INT",
    "INT8": "BIGINT",
    "DEC": "DECIMAL",
    "NUMERIC": "DECIMAL",
    "FIXED": "DECIMAL",
    "REAL": "DOUBLE",
    "FLOAT4": "FLOAT",
    "FLOAT8": "DOUBLE",
    "CHARACTER": "CHAR",
}
NUMERIC_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "DECIMAL", "FLOAT", "DOUBLE"}
)
CHAR_TYPES = frozenset({"CHAR", "VARCHAR"})
TEXT_TYPES = frozenset({"TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT"})
#: Types MySQL knows that no alias function takes or returns (rejected with 1235).
OTHER_TYPES = frozenset(
    {
        "BIT",
        "BINARY",
        "VARBINARY",
        "TINYBLOB",
        "BLOB",
        "MEDIUMBLOB",
        "LONGBLOB",
        "DATE",
        "TIME",
        "DATETIME",
        "TIMESTAMP",
        "YEAR",
        "ENUM",
        "SET",
        "JSON",
        "GEOMETRY",
        "POINT",
        "LINESTRING",
        "POLYGON",
        "MULTIPOINT",
        "MULTILINESTRING",
        "MULTIPOLYGON",
        "GEOMETRYCOLLECTION",
        "GEOMCOLLECTION",
        "SERIAL",
        "VECTOR",
        "NCHAR",
        "NVARCHAR",
        "NATIONAL",
        "LONG",
    }
)
_STRINGY = CHAR_TYPES | TEXT_TYPES | {"ENUM", "SET"}


@dataclass(frozen=True)
class _Type:
    """A parsed column type. ``base`` is the canonical upper-case name."""

    base: str
    params: tuple[str, ...] = ()
    unsigned: bool = False
    zerofill: bool = False
    binary: bool = False
    charset: str | None = None
    collate: str | None = None

    def render(self) -> str:
        parts = [self.base + (f"({','.join(self.params)})" if self.params else "")]
        parts += ["UNSIGNED"] * (self.unsigned or self.zerofill) + ["ZEROFILL"] * self.zerofill
        parts += ["BINARY"] * self.binary
        if self.charset:
            parts.append("CHARSET " + _name(self.charset))
        if self.collate:
            parts.append("COLLATE " + _name(self.collate))
        return " ".join(parts)
