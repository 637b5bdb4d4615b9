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

from collections.abc import Sequence

from proxy.errors import MLStatementError, ProxyError
from proxy.ml.answers import backend_input, typed_literal
from proxy.ml.fastpath.memo import CachedAnswers, Rewrite
from proxy.ml.path import MLRuntime, engine_of
from proxy.ml.settings import StatementSettings
from proxy.upstream.backend import BackendConnection
from proxy.wire.packets import frame
from rewriter.functions import MLFunction
from rewriter.lexer import UnreadableStatement
from rewriter.shaped.constant_calls import ConstantRecipe, KnownRow
from rewriter.shaped.shapes import Shape


def constant_rewrite(
    recipe: ConstantRecipe,
    shape: Shape,
    settings: StatementSettings,
    runtime: MLRuntime,
    backend: BackendConnection,
    account: bytes,
) -> Rewrite | None:
    """The framed rewrite of ``shape``'s statement and the cached answers it holds (not
    yet counted: Rewrite.count), or None when the cache does not answer every call."""
    rows = recipe.rows(shape, settings.utf8_session)
    if rows is None:
        return None
    functions = [site.function for site in recipe.sites]
    try:
        cached = _cached_answers(functions, rows, runtime, account)
        if cached is None:
            return None
        values, held = cached
        mariadb = settings.syntax.mariadb
        answers = [
            typed_literal(f, v, mariadb=mariadb) for f, v in zip(functions, values, strict=True)
        ]
        rewritten = recipe.rewrite(shape, answers)
        command = frame(backend.query_payload(backend.encode(rewritten)), 0)
    except (MLStatementError, UnreadableStatement, ProxyError):
        return None  # the general path reports it
    return Rewrite(command, held)


def _cached_answers(
    functions: Sequence[MLFunction],
    rows: Sequence[KnownRow],
    runtime: MLRuntime,
    account: bytes,
) -> tuple[list[object], tuple[CachedAnswers, ...]] | None:
    """Each call's cached answer (None: NULL, not asked), and the answers held (one
    CachedAnswers per call asked); None when the cache does not answer every call or
    the process has no ML memory to spare."""
    if not runtime.memory.has_room():
        return None
    values: list[object] = []
    held: list[CachedAnswers] = []
    for function, row in zip(functions, rows, strict=True):
        hit, value = _cached_answer(function, row, runtime, account, held)
        if not hit:
            return None
        values.append(value)
    return values, tuple(held)


def _cached_answer(
    function: MLFunction,
    row: KnownRow,
    runtime: MLRuntime,
    account: bytes,
    held: list[CachedAnswers],
) -> tuple[bool, object]:
    """Whether the cache answers one call, and its answer (None for NULL or empty text:
    answered NULL, not asked); an answer it holds is added to ``held``. Raises the
    general path's MLStatementError when the call has no engine."""
    engine = engine_of(runtime, function)  # (first: no engine is the general path's error)
    key = backend_input(function, row)
    if key is None:
        return True, None
    namespace = (account, function.family)
    hit, value = engine.cache.held(namespace, key)
    if hit:
        held.append(CachedAnswers(engine, namespace, (key,), (value,)))
    return hit, value
