"""Which event loop runs the proxy: uvloop when it is installed, else asyncio's own.

Why uvloop: the pass-through path is a handful of small reads and writes per statement,
where the loop's own overhead (selector calls, transports, callbacks) is a large part of
the proxy's CPU time; uvloop (libuv, in Cython) runs the same asyncio code measurably
faster (docs/performance.md, Benchmarks). ``--loop asyncio`` keeps asyncio's loop, for platforms
without uvloop wheels or to rule the loop out when chasing a bug.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from proxy.errors import ConfigError

#: The values of the ``loop`` setting.
LOOPS = ("auto", "asyncio", "uvloop")

T = TypeVar("T")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def resolve(name: str) -> str:
    """The loop ``name`` stands for: ``asyncio`` or ``uvloop`` (``auto``: uvloop if
    installed). Raises ConfigError for an unknown name or a uvloop that is missing."""
    if name not in LOOPS:
        raise ConfigError(f"loop must be auto, asyncio or uvloop, not {name!r}")
    if name == "auto":
        return "uvloop" if uvloop_installed() else "asyncio"
    if name == "uvloop" and not uvloop_installed():
        raise ConfigError("loop uvloop: uvloop is not installed (pip install uvloop)")
    return name


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A callable that makes a new loop of the kind ``name`` stands for."""
    if resolve(name) == "uvloop":
        import uvloop  # imported lazily: only when chosen

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], name: str) -> T:
    """``asyncio.run(main)`` on the chosen loop (asyncio.run takes no loop factory
    before Python 3.12; asyncio.Runner does from 3.11)."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(main)


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: what the running loop is, for the start-up log line."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]
