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

from collections.abc import Hashable

from ml_backends.engine import InferenceEngine
from proxy.errors import MLStatementError, ProxyError
from proxy.ml.answers import backend_input, typed_literal
from proxy.ml.fastpath.memo import CachedAnswers, Rewrite
from proxy.ml.path import MLRuntime, engine_of
from proxy.upstream.backend import BackendConnection
from proxy.wire.packets import frame
from rewriter.lexer import UnreadableStatement
from rewriter.shaped.constant_calls import ConstantRecipe
from rewriter.shaped.shapes import Shape

#: Per family: its engine, the cache partition, the inputs asked and the answers found.
_Asked = tuple[InferenceEngine, Hashable, list[Hashable], list[object]]


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
    if rows is None or not runtime.memory.has_room():
        return None
    answers: list[str] = []
    asked: dict[str, _Asked] = {}
    try:
        for site, row in zip(recipe.sites, rows, strict=True):
            function = site.function
            family = function.family
            group = asked.get(family)
            if group is None:
                group = asked[family] = (engine_of(runtime, function), (account, family), [], [])
            engine, namespace, inputs, values = group
            key = backend_input(function, row)
            value: object = None  # NULL or empty text: answered NULL, not asked
            if key is not None:
                hit, value = engine.cache.held(namespace, key)
                if not hit:
                    return None
                inputs.append(key)
                values.append(value)
            answers.append(typed_literal(function, value))
        rewritten = recipe.rewrite(shape, answers)
        command = frame(backend.query_payload(backend.encode(rewritten)), 0)
    except (MLStatementError, UnreadableStatement, ProxyError):
        return None  # the general path reports it
    return Rewrite(
        command,
        tuple(
            CachedAnswers(engine, namespace, tuple(inputs), tuple(values))
            for engine, namespace, inputs, values in asked.values()
        ),
    )
