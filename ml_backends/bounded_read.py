"""Model answers read with a ceiling.

A model endpoint is a peer like any other: a broken or hostile one can answer a batch
with gigabytes (a container echoing its input forever, a misrouted download). Read whole,
such a body lands in the proxy's memory before anything looks at it, and every session
pays. Answers are read in chunks up to ``max_answer_bytes`` (the ``ml_max_answer_bytes``
setting); one byte more fails that request with InferenceFailed, which fails the statement
that asked (not worth retrying: the same request gets the same answer). Error bodies
are read only as far as the explanation a SQL user is shown.
"""

from __future__ import annotations

from typing import Protocol

from ml_backends.errors import InferenceFailed

#: 16 MiB: far above a real batch's answers (SageMaker's own limit on a response is
#: 6 MB; a Bedrock completion is kilobytes), far below what would hurt the process.
DEFAULT_MAX_ANSWER_BYTES = 16 << 20
#: The part of an error body kept as its explanation.
DETAIL_BYTES = 1024
_CHUNK = 64 << 10


class Readable(Protocol):
    """A response body: http.client's, urllib3's, botocore's StreamingBody."""

    def read(self, amt: int, /) -> bytes: ...


class Closable(Readable, Protocol):
    def close(self) -> None: ...


def read_answer(body: Readable, limit: int, where: str, declared: str | None = None) -> bytes:
    """At most ``limit`` bytes of ``body``; InferenceFailed when it has more. ``declared``
    is the response's Content-Length, which refuses an announced giant before reading."""
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large(where, limit, f"announced {int(declared)} bytes")
    parts: list[bytes] = []
    size = 0
    while chunk := body.read(min(_CHUNK, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            raise too_large(where, limit, "kept on sending")
        parts.append(chunk)
    return b"".join(parts)


def read_detail(body: Closable) -> str:
    """The start of an error body, as text, for the message a SQL user sees; the rest
    is not read (the connection is closed, not reused)."""
    try:
        return body.read(DETAIL_BYTES).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    finally:
        body.close()


def too_large(where: str, limit: int, how: str) -> InferenceFailed:
    return InferenceFailed(
        f"{where} answered more than {limit} bytes ({how}); the ml_max_answer_bytes setting"
        " bounds one answer"
    )
