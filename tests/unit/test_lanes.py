"""proxy.ml.fastpath.lanes against the text path it stands for, and when a lane answers.

The oracle is the recipe on the decoded statement (proxy.ml.fastpath.constants
.constant_rewrite: the shape's matcher and recipe, what a statement of a shape goes
through without a splice). For statements of constant-call shapes with hostile literals
(tests/unit/test_constant_splice.py's), in a utf8mb4 session and a single-byte one, with
every answer cached or one missing, a lane must give the recipe's command and hold the
same cached answers; and it must answer nothing once the session's settings, the
registry's names, the backend connection or the account are not the ones it was made
for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_backends.cache import ResultCache
from ml_backends.sentiment import Sentiment
from proxy.config import load_config
from proxy.ml.answers import backend_input
from proxy.ml.fastpath.constants import constant_rewrite
from proxy.ml.fastpath.lanes import MAX_LANES, ConstantLane
from proxy.ml.fastpath.memo import CachedAnswers
from proxy.ml.fastpath.planning import SessionPlanner, Shaped, Spliced
from proxy.ml.path import MLRuntime
from proxy.ml.runtime import build_runtime
from rewriter.charsets import ClientCharset, client_charset
from rewriter.shaped.plan_cache import Template
from tests.unit.test_constant_splice import STRINGS, S, statement
from tests.unit.test_point_splice import FakeBackend, _planner

ACCOUNT = b"app@%"
FAMILY = "comprehend.sentiment"
#: Constant-call shapes ({s}: a string's bytes between single quotes, {n}: an integer's
#: digits): one call, a label and a confidence, calls inside an expression, a
#: max_batch_size, integers as inputs, a column named in UTF-8 (no single-byte session).
FORMS = [
    f"SELECT {S}('{{s}}', '{{s}}')",
    f"SELECT {S}('{{s}}', 'en'), {S}_confidence('{{s}}', 'en') AS conf, {{n}} + 1",
    f"SELECT CONCAT({S}('{{s}}', 'en'), '{{s}}') FROM t WHERE id = {{n}}",
    f"SELECT {S}('{{s}}', 'en', {{n}}) FROM dual WHERE {{n}} > 0",
    f"SELECT {S}({{n}}, '{{s}}')",
    f"SELECT LENGTH({S}('{{s}}', 'en')) + {{n}} AS n, {S}('{{s}}', 'en') FROM tablé",
]
SESSIONS = [("utf8mb4", True), ("latin1", False)]
#: A string's bytes: what an application sends (most of them), or hostile ones.
TEXTS = st.one_of(
    st.sampled_from([b"I love it", "café crème".encode(), b"back`tick", b"x" * 300, b"en"]),
    STRINGS,
)


@pytest.fixture(scope="module")
def runtime() -> MLRuntime:
    return build_runtime(load_config({}, env={}))


def _backend(charset: ClientCharset) -> Any:
    """What a lane reads of a backend connection (typed as any: it stands for one)."""
    return FakeBackend(charset)


def _cache(runtime: MLRuntime) -> ResultCache:
    cache = runtime.engines[FAMILY].cache
    assert isinstance(cache, ResultCache)  # (the process's own: no shared cache configured)
    return cache


def _warm(planner: SessionPlanner, form: str) -> None:
    """The shape recent in the session: its first statement read (the task's way)."""
    first = form.replace("{s}", "a").replace("{n}", "1").encode()
    assert isinstance(planner.read_now(first, ACCOUNT), Shaped)


def _oracle(runtime: MLRuntime, planner: SessionPlanner, backend: Any, sql: bytes) -> Any:
    """The recipe's rewrite of ``sql`` on its decoded text: (command, held answers)."""
    settings = planner.known.kept()
    assert settings is not None and settings.charset is not None
    read = planner.read_now(sql, ACCOUNT)
    assert isinstance(read, Shaped) and isinstance(read.entry, Template)
    recipe = read.entry.constant
    assert recipe is not None and read.shape is not None
    rewrite = constant_rewrite(recipe, read.shape, settings, runtime, backend, ACCOUNT)
    return None if rewrite is None else (rewrite.command, _held(rewrite.answers))


def _held(answers: tuple[CachedAnswers, ...]) -> list[tuple[Any, ...]]:
    return [(a.engine, a.namespace, a.inputs, a.values) for a in answers]


def _answer_all_but(runtime: MLRuntime, planner: SessionPlanner, sql: bytes, missing: int) -> None:
    """Cache an answer for each of ``sql``'s calls but the ``missing``-th (-1: none)."""
    cache = _cache(runtime)
    cache.clear()
    read = planner.read_now(sql, ACCOUNT)
    if not isinstance(read, Shaped) or not isinstance(read.entry, Template):
        return
    recipe = read.entry.constant
    settings = planner.known.kept()
    if recipe is None or read.shape is None or settings is None:
        return
    rows = recipe.rows(read.shape, settings.utf8_session)
    if rows is None:  # (a string that is not UTF-8: no answer to cache)
        return
    for n, (site, row) in enumerate(zip(recipe.sites, rows, strict=True)):
        try:
            key = backend_input(site.function, row)
        except Exception:  # an input the general path refuses (an unknown language)
            continue
        if key is not None and n != missing:
            cache.put(((ACCOUNT, FAMILY), key), Sentiment("MIXED", 0.25))


@pytest.mark.parametrize("session", SESSIONS, ids=[name for name, _ in SESSIONS])
@pytest.mark.parametrize("form", FORMS)
@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_a_lane_gives_what_the_recipe_gives(
    runtime: MLRuntime, form: str, session: tuple[str, bool], data: st.DataObject
) -> None:
    name, utf8 = session
    charset = client_charset(name)
    planner, backend = _planner(runtime, charset, utf8), _backend(charset)
    _warm(planner, form)
    sql = data.draw(statement(form, TEXTS))
    read = planner.matched(sql)
    if not isinstance(read, Spliced):
        return  # (the splice's own tests: it matches whatever the recipe answers)
    lane = planner.lane(read, backend, ACCOUNT)
    assert lane is not None
    _answer_all_but(runtime, planner, sql, data.draw(st.sampled_from([-1, -1, 0, 1])))
    expected = _oracle(runtime, planner, backend, sql)
    written = lane.rewrite(read.found)
    got = None if written is None else (written.command, _held(written.answers))
    assert got == expected
    laned = planner.lane_rewrite(sql, backend, ACCOUNT)
    assert (None if laned is None else (laned.command, _held(laned.answers))) == expected


def test_plain_statements_take_the_lane() -> None:
    """The property above holds trivially if no lane answers: plain ones must."""
    runtime = build_runtime(load_config({}, env={}))
    planner, backend = _lane_session(runtime)
    sql = f"SELECT {S}('I love it', 'en')".encode()
    written = planner.lane_rewrite(sql, backend, ACCOUNT)
    assert written is not None
    assert written.command.endswith(f" AS `{S}('I love it', 'en')`".encode())
    assert written.calls == 1


def _lane_session(runtime: MLRuntime) -> tuple[SessionPlanner, Any]:
    """A utf8mb4 session with a lane for one constant call, its answers cached."""
    charset = client_charset("utf8mb4")
    planner, backend = _planner(runtime, charset, True), _backend(charset)
    form = f"SELECT {S}('{{s}}', 'en')"
    _warm(planner, form)
    for text in ("I love it", "I hate it", "second"):
        sql = form.replace("{s}", text).encode()
        _answer_each(runtime, text)
        read = planner.matched(sql)
        assert isinstance(read, Spliced)
        assert planner.lane(read, backend, ACCOUNT) is not None
    return planner, backend


def _answer_each(runtime: MLRuntime, *texts: str) -> None:
    cache = _cache(runtime)
    function = runtime.functions[S]
    for text in texts:
        key = backend_input(function, (text.encode(), b"en"))
        cache.put(((ACCOUNT, FAMILY), key), Sentiment("POSITIVE", 0.75))


@pytest.fixture
def lane_session() -> Iterator[tuple[MLRuntime, SessionPlanner, Any]]:
    runtime = build_runtime(load_config({}, env={}))
    planner, backend = _lane_session(runtime)
    _answer_each(runtime, "I love it", "I hate it")
    yield runtime, planner, backend


LOVE = f"SELECT {S}('I love it', 'en')".encode()


def test_a_lane_answers_only_under_the_settings_it_was_made_under(
    lane_session: tuple[MLRuntime, SessionPlanner, Any],
) -> None:
    _, planner, backend = lane_session
    assert planner.lane_rewrite(LOVE, backend, ACCOUNT) is not None
    kept = planner.known.kept()
    assert kept is not None
    planner.known.keep(kept)  # read again (SET NAMES, USE, a sql_mode...): a new epoch
    assert planner.lane_rewrite(LOVE, backend, ACCOUNT) is None
    planner.known.forget()
    assert planner.lane_rewrite(LOVE, backend, ACCOUNT) is None


def test_a_lane_answers_only_while_the_registry_names_what_it_did(
    lane_session: tuple[MLRuntime, SessionPlanner, Any],
) -> None:
    _, planner, backend = lane_session
    assert planner.lane_rewrite(LOVE, backend, ACCOUNT) is not None
    planner.registry.generation += 1  # an alias created or dropped
    assert planner.lane_rewrite(LOVE, backend, ACCOUNT) is None


def test_a_lane_answers_only_its_backend_connection_and_account(
    lane_session: tuple[MLRuntime, SessionPlanner, Any],
) -> None:
    """A lane holds its account's cache namespace: another account's statement (after a
    change of user the settings are read again anyway) must never get its answers."""
    _, planner, backend = lane_session
    assert planner.lane_rewrite(LOVE, _backend(client_charset("utf8mb4")), ACCOUNT) is None
    assert planner.lane_rewrite(LOVE, backend, b"other@%") is None
    assert planner.lane_rewrite(LOVE, backend, ACCOUNT) is not None


def test_a_lane_leaves_what_it_cannot_answer_to_the_general_path(
    lane_session: tuple[MLRuntime, SessionPlanner, Any],
) -> None:
    runtime, planner, backend = lane_session
    never = f"SELECT {S}('never asked', 'en')".encode()
    assert planner.lane_rewrite(never, backend, ACCOUNT) is None  # not cached
    klingon = f"SELECT {S}('I love it', 'tlh')".encode()
    assert planner.lane_rewrite(klingon, backend, ACCOUNT) is None  # the general path's error
    other_shape = f"SELECT {S}('I love it', 'en') AS x".encode()
    assert planner.lane_rewrite(other_shape, backend, ACCOUNT) is None
    empty = f"SELECT {S}('', 'en')".encode()  # (NULL, not asked: the recipe's to write)
    assert planner.lane_rewrite(empty, backend, ACCOUNT) is None
    memory = runtime.memory
    used, memory.used = memory.used, memory.limit
    try:
        assert planner.lane_rewrite(LOVE, backend, ACCOUNT) is None  # no room: it waits
    finally:
        memory.used = used


def test_a_session_keeps_its_last_lanes() -> None:
    runtime = build_runtime(load_config({}, env={}))
    charset = client_charset("utf8mb4")
    planner, backend = _planner(runtime, charset, True), _backend(charset)
    lanes: list[ConstantLane] = []
    for n in range(MAX_LANES + 1):
        form = f"SELECT {S}('{{s}}', 'en') AS a{n}"
        _warm(planner, form)
        read = planner.matched(form.replace("{s}", "x").encode())
        assert isinstance(read, Spliced)
        lane = planner.lane(read, backend, ACCOUNT)
        assert lane is not None
        assert planner.lane(read, backend, ACCOUNT) is lane  # (kept, not made again)
        lanes.append(lane)
    _answer_each(runtime, "x")
    for n in range(len(lanes)):
        sql = f"SELECT {S}('x', 'en') AS a{n}".encode()
        written = planner.lane_rewrite(sql, backend, ACCOUNT)
        assert (written is not None) == (n > 0), n  # the oldest one let go
