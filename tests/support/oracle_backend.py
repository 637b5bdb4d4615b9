"""A deterministic "sentiment" function, implemented in Python for the proxy's
``python:`` backend and as MySQL stored functions (``STORED_FUNCTIONS``), so the proxy's
answers can be checked against the database evaluating the same function itself.

For a text ``t`` in language ``lang`` let ``c = CRC32(lower(lang) + ':' + t)`` (over the
UTF-8 bytes). Then::

    label      = LABELS[c % 4]
    confidence = ((c // 4) % 10000) / 10000

The confidence has at most four decimal digits: SQL computes ``v / 10000`` as an exact
DECIMAL and converts it to the nearest DOUBLE, Python's ``v / 10000`` is the correctly
rounded quotient, i.e. the same nearest DOUBLE (tests/oracle/test_ml_oracle.py checks all
10,000 values on the server). NULL or empty text, or a NULL language, is answered NULL
by both (the proxy never sends those to a backend).
"""

from __future__ import annotations

import threading
import zlib

LABELS = ("POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED")
DENOMINATOR = 10000

#: The inputs of every batch the proxy sent, in arrival order (tests clear it).
CALLS: list[list[tuple[str, str]]] = []
_LOCK = threading.Lock()

#: The same function as MySQL stored functions (one statement each).
STORED_FUNCTIONS = (
    """
    CREATE FUNCTION _oracle_crc(t LONGTEXT CHARACTER SET utf8mb4,
                                lang VARCHAR(16) CHARACTER SET utf8mb4)
    RETURNS BIGINT DETERMINISTIC
    RETURN IF(t IS NULL OR lang IS NULL OR OCTET_LENGTH(t) = 0, NULL,
              CRC32(CONCAT(LOWER(TRIM(lang)), ':', t)))
    """,
    f"""
    CREATE FUNCTION _oracle_fraction(v BIGINT) RETURNS DOUBLE DETERMINISTIC
    RETURN v / {DENOMINATOR}
    """,
    """
    CREATE FUNCTION aws_comprehend_detect_sentiment(t LONGTEXT CHARACTER SET utf8mb4,
                                                    lang VARCHAR(16) CHARACTER SET utf8mb4)
    RETURNS VARCHAR(8) CHARACTER SET utf8mb4 DETERMINISTIC
    RETURN ELT(1 + _oracle_crc(t, lang) MOD 4, 'POSITIVE', 'NEGATIVE', 'NEUTRAL', 'MIXED')
    """,
    f"""
    CREATE FUNCTION aws_comprehend_detect_sentiment_confidence(
        t LONGTEXT CHARACTER SET utf8mb4, lang VARCHAR(16) CHARACTER SET utf8mb4)
    RETURNS DOUBLE DETERMINISTIC
    RETURN _oracle_fraction(_oracle_crc(t, lang) DIV 4 MOD {DENOMINATOR})
    """,
)


def checksum(text: str, language: str) -> int:
    """CRC32 of ``lower(language) + ':' + text`` as UTF-8 (SQL's ``_oracle_crc``)."""
    return zlib.crc32(f"{language.strip().lower()}:{text}".encode())


def fraction(value: int) -> float:
    """SQL's ``_oracle_fraction``: ``value / 10000`` as the nearest DOUBLE."""
    return value / DENOMINATOR


def answer(text: str, language: str) -> tuple[str, float]:
    """(label, confidence) of one input."""
    crc = checksum(text, language)
    return LABELS[crc % 4], fraction((crc // 4) % DENOMINATOR)


def crc_sentiment(inputs: list[tuple[str, str]]) -> list[tuple[str, float]]:
    """The backend callable: one (label, confidence) per (text, language), in order."""
    with _LOCK:
        CALLS.append([(str(text), str(language)) for text, language in inputs])
    return [answer(text, language) for text, language in inputs]


def batch_sizes() -> list[int]:
    """Sizes of the batches recorded so far, sorted (batches may run concurrently)."""
    with _LOCK:
        return sorted(len(batch) for batch in CALLS)


def sent_inputs() -> list[tuple[str, str]]:
    """Every input sent so far, over all batches."""
    with _LOCK:
        return [item for batch in CALLS for item in batch]


def reset() -> None:
    """Forget the recorded calls."""
    with _LOCK:
        CALLS.clear()
