"""Statements whose ML calls all take literals, answered from the result cache in one step.

An application that calls a model per request with the request's text
(``SELECT aws_comprehend_detect_sentiment('...', 'en')``) sends a statement of one shape
with other literals each time. Once the shape's template has a recipe
(rewriter.shaped.constant_calls), such a statement whose answers are all cached needs no plan:
its key rows come from its literals, its answers from the cache, its rewrite from the
recipe, and the session's socket callback sends it as it sends a plain statement
(proxy.session.session.Session._ml_in_callback). This is the path of
proxy.ml.fastpath.quick for a statement without key queries, without its objects: the same
rewrite, the same counts (each call a cache hit, as the engine counts one), the same
memo entry.

Anything else (an answer not cached, an input the text does not settle, a family without
a backend, no room in the process's ML memory) returns None, and the statement takes the
general path, which reports what needs reporting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from proxy.errors import MLStatementError, ProxyError
from proxy.ml.answers import backend_input, typed_literal
from proxy.ml.fastpath.memo import CachedAnswers, Rewrite
from proxy.ml.path import MLRuntime, engine_of
from proxy.upstream.backend import BackendConnection
from proxy.wire.packets import frame
from rewriter.functions import MLFunction
from rewriter.lexer import UnreadableStatement
from rewriter.shaped.constant_calls import ConstantRecipe, KnownRow
from rewriter.shaped.constant_splice import ConstantSplice
from rewriter.shaped.shapes import Shape

T = TypeVar("T")


def constant_rewrite(
    recipe: ConstantRecipe,
    shape: Shape,
    utf8_session: bool,
    runtime: MLRuntime,
    backend: BackendConnection,
    account: bytes,
) -> Rewrite | None:
    """The framed rewrite of ``shape``'s statement and the cached answers it holds (not
    yet counted: Rewrite.count), or None when the cache does not answer every call."""
    rows = recipe.rows(shape, utf8_session)
    if rows is None:
        return None
    functions = [site.function for site in recipe.sites]
    try:
        cached = _cached_answers(functions, rows, runtime, account, str)
        if cached is None:
            return None
        answers, held = cached
        rewritten = recipe.rewrite(shape, answers)
        command = frame(backend.query_payload(backend.encode(rewritten)), 0)
    except (MLStatementError, UnreadableStatement, ProxyError):
        return None  # the general path reports it
    return Rewrite(command, held)


def spliced_rewrite(
    splice: ConstantSplice,
    found: re.Match[bytes],
    runtime: MLRuntime,
    backend: BackendConnection,
    account: bytes,
) -> Rewrite | None:
    """``constant_rewrite`` of the statement ``found`` by its shape's splice
    (rewriter.shaped.constant_splice): the same rewrite, made on its bytes."""
    rows = splice.rows(found)
    if rows is None:
        return None
    try:
        cached = _cached_answers(splice.functions, rows, runtime, account, backend.encode)
        if cached is None:
            return None
        answers, held = cached
        rewritten = splice.write(found, answers, backend.charset.codec)
        command = frame(backend.query_payload(rewritten), 0)
    except (MLStatementError, UnreadableStatement, ProxyError):
        return None  # the general path reports it
    return Rewrite(command, held)


def _cached_answers(
    functions: Sequence[MLFunction],
    rows: Sequence[KnownRow],
    runtime: MLRuntime,
    account: bytes,
    written: Callable[[str], T],
) -> tuple[list[T], tuple[CachedAnswers, ...]] | None:
    """Each call's answer as SQL text (``written``: as text, or encoded), and the answers
    held (one CachedAnswers per call asked); None when the cache does not answer every
    call or the process has no ML memory to spare."""
    if not runtime.memory.has_room():
        return None
    answers: list[T] = []
    held: list[CachedAnswers] = []
    for function, row in zip(functions, rows, strict=True):
        engine = engine_of(runtime, function)  # (first: no engine is the general path's error)
        key = backend_input(function, row)
        value: object = None  # NULL or empty text: answered NULL, not asked
        if key is not None:
            namespace = (account, function.family)
            hit, value = engine.cache.held(namespace, key)
            if not hit:
                return None
            held.append(CachedAnswers(engine, namespace, (key,), (value,)))
        answers.append(written(typed_literal(function, value)))
    return answers, tuple(held)
