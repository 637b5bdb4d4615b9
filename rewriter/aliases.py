"""Endpoint aliases (``CREATE FUNCTION ... ALIAS``) as callable ML functions.

An alias takes typed arguments and returns a declared type. Its inputs are cast to the
declared argument types before they are read (as a stored function's parameters would
convert them), and its answers travel as text that MySQL casts to the RETURNS type where
the call stood, so a model answering ``"1"`` or ``"0.87"`` gives what MySQL's own
conversion gives.

>>> from rewriter.ddl import parse_ml_ddl
>>> fn = parse_ml_ddl("create function f(a int, b varchar(10)) returns decimal(5,2) "
...                   "alias aws_sagemaker_invoke_endpoint endpoint name 'ep'")
>>> ml = alias_function(fn, "shop")
>>> (ml.name, ml.inputs, ml.input_casts, ml.cast_type)
('f', 2, ('SIGNED', 'CHAR(10) CHARACTER SET utf8mb4'), 'DECIMAL(5,2)')
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from rewriter.ddl.model import AliasFunction
from rewriter.functions import MLFunction

_INTEGERS = frozenset({"TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT"})
_TYPE = re.compile(r"^(\w+)(?:\(([^)]*)\))?(.*)$", re.DOTALL)
_CHARSET = re.compile(r"\bCHARSET\s+`?(\w+)`?", re.IGNORECASE)

#: A Python value sent to a backend for one argument.
Value = int | float | Decimal | str | None


@dataclass(frozen=True)
class SqlType:
    """The parts of a normalized type (``DECIMAL(10,2) UNSIGNED``) that conversions need."""

    base: str
    params: tuple[str, ...]
    unsigned: bool
    charset: str | None

    @classmethod
    def parse(cls, text: str) -> SqlType:
        match = _TYPE.match(text.strip())
        if match is None:
            raise ValueError(f"not a SQL type: {text!r}")
        base, params, rest = match.groups()
        charset = _CHARSET.search(rest)
        return cls(
            base=base.upper(),
            params=tuple(p.strip() for p in params.split(",")) if params else (),
            unsigned="UNSIGNED" in rest.upper(),
            charset=charset.group(1).lower() if charset else None,
        )

    @property
    def cast_target(self) -> str:
        """The CAST target closest to assigning a value to this type."""
        if self.base in _INTEGERS:
            return "UNSIGNED" if self.unsigned else "SIGNED"
        if self.base == "DECIMAL":
            return "DECIMAL" + (f"({','.join(self.params)})" if self.params else "")
        if self.base in ("FLOAT", "DOUBLE"):
            return self.base
        charset = f" CHARACTER SET {self.charset or 'utf8mb4'}"
        if self.base in ("CHAR", "VARCHAR") and self.params:
            return f"CHAR({self.params[0]}){charset}"
        return "CHAR" + charset  # TEXT types: no length limit worth imposing

    def python_value(self, raw: bytes | None) -> Value:
        """A key query's value (the input's utf8mb4 text) as the Python value a backend
        receives: int, Decimal, float or str; None for NULL."""
        if raw is None:
            return None
        text = raw.decode("utf-8", "replace")
        try:
            if self.base in _INTEGERS:
                return int(text)
            if self.base == "DECIMAL":
                return Decimal(text)
            if self.base in ("FLOAT", "DOUBLE"):
                return float(text)
        except (ValueError, InvalidOperation):
            return text  # MySQL already cast it; keep its text rather than guess
        return text


def alias_function(definition: AliasFunction, schema: str) -> MLFunction:
    """The callable function for an alias defined in ``schema``."""
    arg_types = _argument_types(definition)
    return MLFunction(
        name=definition.name.lower(),
        family=alias_family(definition, schema),
        output="value",
        inputs=len(arg_types),
        max_args=len(arg_types),
        sql_type=definition.returns,
        result_cast=SqlType.parse(definition.returns).cast_target,
        input_casts=tuple(t.cast_target for t in arg_types),
        definition=definition,
    )


def alias_family(definition: AliasFunction, schema: str) -> str:
    """Names the function and its exact definition: answers cached under one definition
    are never reused after the function is dropped and created differently."""
    digest = hashlib.sha256(definition.sql.encode("utf-8", "surrogateescape")).hexdigest()
    return f"alias:{schema}.{definition.name.lower()}:{digest[:16]}"


def input_values(function: MLFunction, row: tuple[bytes | None, ...]) -> tuple[Value, ...]:
    """One key row of an alias call as the backend's argument tuple."""
    definition = function.definition
    assert isinstance(definition, AliasFunction)
    types = _argument_types(definition)
    return tuple(t.python_value(raw) for t, raw in zip(types, row, strict=True))


@functools.lru_cache(maxsize=1024)
def _argument_types(definition: AliasFunction) -> tuple[SqlType, ...]:
    return tuple(SqlType.parse(a.sql_type) for a in definition.args)


def answer_text(value: object) -> str | None:
    """A backend's answer as the text MySQL casts (booleans as 1/0, as MySQL has them)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
