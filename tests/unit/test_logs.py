"""proxy/logs: the connection id comes from the running session, once per line, in both
formats; every logger of the packages hangs under the one root ``mlproxy``."""

from __future__ import annotations

import ast
import asyncio
import contextvars
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from proxy.logs import CONNECTION_ID, ROOT, ContextLog, log_handler

PACKAGES_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("proxy", "rewriter", "ml_backends")


def lines_of(log_format: str, run: Callable[[logging.Logger], None]) -> list[str]:
    """What ``run`` logs through a fresh handler in ``log_format``."""
    logger = logging.getLogger(f"{ROOT}.tests.logs.{log_format}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    stream = io.StringIO()
    handler = log_handler(log_format=log_format, stream=stream)
    logger.addHandler(handler)
    try:
        contextvars.copy_context().run(run, logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def as_session(connection_id: int, body: Callable[[logging.Logger], None]) -> Callable[..., None]:
    def run(logger: logging.Logger) -> None:
        CONNECTION_ID.set(connection_id)
        body(logger)

    return run


def closed(logger: logging.Logger) -> None:
    logger.info("closed (user %s)", "ana")


def test_a_sessions_text_line_names_its_connection_once() -> None:
    (line,) = lines_of("text", as_session(4321, closed))
    assert line.endswith(" mlproxy.tests.logs.text [conn 4321]: closed (user ana)"), line
    assert line.count("4321") == 1


def test_a_sessions_json_line_carries_its_connection_id() -> None:
    (line,) = lines_of("json", as_session(4321, closed))
    record = json.loads(line)
    assert (record["connection_id"], record["message"]) == (4321, "closed (user ana)")
    assert record["logger"] == "mlproxy.tests.logs.json"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_line_outside_any_session_has_no_connection(log_format: str) -> None:
    (line,) = lines_of(log_format, closed)
    assert "conn" not in line and "connection_id" not in line, line


def test_what_a_session_starts_logs_for_it_too() -> None:
    """A task or a thread started by the session (the ML engine, a boto3 call) inherits
    the id without being told."""

    def body(logger: logging.Logger) -> None:
        async def in_task() -> None:
            logger.info("in a task")
            await asyncio.to_thread(logger.info, "in a thread")

        asyncio.run(in_task())

    lines = lines_of("json", as_session(77, body))
    assert [json.loads(line)["connection_id"] for line in lines] == [77, 77]


def test_the_sessions_adapter_and_the_context_agree_once() -> None:
    """The session's ContextLog names the connection too: the line still says it once."""

    def body(logger: logging.Logger) -> None:
        ContextLog(logger, {"connection_id": 9}).info("opened: user ana")

    (line,) = lines_of("text", as_session(9, body))
    assert re.search(r" \[conn 9\]: opened: user ana$", line) and line.count("[conn") == 1


def logger_names(path: Path) -> Iterator[ast.expr]:
    """The name argument of every ``logging.getLogger(...)`` call in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "getLogger"
        ):
            yield node.args[0] if node.args else ast.Constant(None)


def under_the_root(name: ast.expr) -> bool:
    """``"mlproxy"`` itself or an f-string that starts ``mlproxy.``."""
    if isinstance(name, ast.Constant):
        return name.value == ROOT
    if isinstance(name, ast.JoinedStr) and name.values:
        first = name.values[0]
        return isinstance(first, ast.Constant) and str(first.value).startswith(f"{ROOT}.")
    return False


@pytest.mark.parametrize("package", PACKAGES)
def test_every_logger_hangs_under_the_one_root(package: str) -> None:
    outside = [
        f"{path.relative_to(PACKAGES_ROOT)}: {ast.unparse(name)}"
        for path in sorted((PACKAGES_ROOT / package).rglob("*.py"))
        for name in logger_names(path)
        if not under_the_root(name)
    ]
    assert outside == []


def test_a_logger_outside_the_root_is_found(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "import logging\n"
        "a = logging.getLogger(__name__)\n"
        "b = logging.getLogger(f'mlproxy.{__name__}')\n"
        "c = logging.getLogger('mlproxy')\n"
        "d = logging.getLogger('proxy.x')\n",
        encoding="utf-8",
    )
    verdicts = [under_the_root(name) for name in logger_names(source)]
    assert verdicts == [False, True, True, False]
