"""The canonical text of an alias function (what SHOW CREATE FUNCTION shows)."""

from __future__ import annotations

from rewriter.ddl.model import (
    BEDROCK_ALIAS,
    DEFAULT_CONTENT_TYPE,
    SAGEMAKER_ALIAS,
    AliasFunction,
)
from rewriter.ddl.types import _ident, _string

# --- rendering -------------------------------------------------------------------------


def render_create(fn: AliasFunction) -> str:
    """The canonical CREATE text of ``fn``: every clause explicit (defaults included),
    identifiers backticked, DEFINER in MySQL's position, one line."""
    name = (_ident(fn.schema) + "." if fn.schema else "") + _ident(fn.name)
    args = ", ".join(f"{_ident(a.name)} {a.sql_type}" for a in fn.args)
    parts = ["CREATE"]
    if fn.definer:
        parts.append("DEFINER=" + fn.definer)
    parts += [f"FUNCTION {name}({args})", "RETURNS " + fn.returns]
    if fn.security:
        parts.append("SQL SECURITY " + fn.security)
    if fn.kind == "sagemaker":
        parts += [f"ALIAS {SAGEMAKER_ALIAS} ENDPOINT NAME", _string(fn.endpoint or "")]
        parts.append(f"MAX_BATCH_SIZE {fn.max_batch_size}")
    else:
        parts += [f"ALIAS {BEDROCK_ALIAS} MODEL ID", _string(fn.model_id or "")]
        parts += ["CONTENT_TYPE", _string(fn.content_type or DEFAULT_CONTENT_TYPE)]
        parts += ["ACCEPT", _string(fn.accept or DEFAULT_CONTENT_TYPE)]
        if fn.timeout_ms is not None:
            parts.append(f"TIMEOUT_MS {fn.timeout_ms}")
    return " ".join(parts)
