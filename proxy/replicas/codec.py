"""Inputs and answers as the shared cache writes them: JSON data, never pickles.

Whoever can write to the Redis can change answers (protect it as you protect the
database), but nothing read from it can run code in the proxy: values are decoded as
plain data, strictly typed, bounded in size, and every answer then passes the same check
as a model's answer (proxy.ml.answer_check) before a statement uses it.

Keys are digests of everything that changes an answer: the engine's scope (the backend
server the proxy fronts and the model the function resolves to), the cache namespace
(the account and the function's family, which for an alias names its definition), and
the input. A digest keeps inputs out of the key space and keys short.

>>> from decimal import Decimal
>>> decode_answer(encode_answer(("x", 2, 0.5, Decimal("1.10"), None, True, b"\\x00")))
('x', 2, 0.5, Decimal('1.10'), None, True, b'\\x00')
>>> from ml_backends.sentiment import Sentiment
>>> decode_answer(encode_answer(Sentiment("POSITIVE", 0.9)))
Sentiment(label='POSITIVE', confidence=0.9)
>>> answer_key("scope", ("app", "f"), ("x",)) != answer_key("scope", ("other", "f"), ("x",))
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable
from decimal import Decimal, InvalidOperation
from typing import Any

from ml_backends.sentiment import Sentiment

#: Every key the proxy writes starts with this.
PREFIX = "mlproxy:"
#: The largest encoded answer the shared cache writes or reads (a larger one stays in
#: this process's cache only; one read that is larger is ignored).
MAX_SHARED_ANSWER_BYTES = 1 << 20


class Unshareable(ValueError):
    """A value the codec does not write (its type is not plain data)."""


def _plain(value: object) -> Any:
    """``value`` as JSON data that tells its type back exactly."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value.hex()}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    if isinstance(value, bytes):
        return {"x": value.hex()}
    if isinstance(value, Sentiment):
        return {"s": [_plain(value.label), _plain(value.confidence)]}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    raise Unshareable(type(value).__name__)


def _value(data: Any) -> Any:
    """The inverse of ``_plain``; ValueError for anything it would not have written."""
    if data is None or isinstance(data, str):
        return data
    if isinstance(data, list):
        return tuple(_value(item) for item in data)
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError("not a value")
    ((tag, raw),) = data.items()
    if tag == "b" and isinstance(raw, bool):
        return raw
    if tag == "s" and isinstance(raw, list) and len(raw) == 2:
        label, confidence = (_value(item) for item in raw)
        if isinstance(label, str) and isinstance(confidence, float):
            return Sentiment(label, confidence)
        raise ValueError("not a sentiment")
    if not isinstance(raw, str):
        raise ValueError("not a value")
    decode = _DECODERS.get(tag)
    if decode is None:
        raise ValueError("unknown tag")
    return decode(raw)


_DECODERS: dict[str, Callable[[str], object]] = {
    "i": int,
    "f": float.fromhex,
    "d": Decimal,
    "x": bytes.fromhex,
}


def _canonical(value: object) -> bytes:
    return json.dumps(_plain(value), separators=(",", ":")).encode("ascii")


def answer_key(scope: str, namespace: Hashable, item: Hashable) -> str:
    """The Redis key of one answer. Raises Unshareable for an input of another type."""
    digest = hashlib.blake2b(_canonical([scope, namespace, item]), digest_size=20)
    return f"{PREFIX}answer:{digest.hexdigest()}"


def encode_answer(value: object) -> bytes:
    """An answer's stored form. Raises Unshareable (not plain data)."""
    return _canonical(value)


def decode_answer(raw: bytes) -> Any:
    """An answer read back; ValueError for anything the proxy would not have written."""
    if len(raw) > MAX_SHARED_ANSWER_BYTES:
        raise ValueError("over the shared cache's answer size")
    try:
        return _value(json.loads(raw))
    except (ValueError, TypeError, RecursionError, InvalidOperation) as exc:
        raise ValueError("not an answer") from exc
