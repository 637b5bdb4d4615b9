"""Worker processes answering each other about their connections (``--workers N``).

A client's KILL lands on whichever worker the kernel gave its connection, but the id it
names may belong to another worker (the mysql CLI's Ctrl-C opens a new connection to
send ``KILL QUERY``). The id's slice names the owner (proxy.session.kill.worker_of), which
answers on a Unix socket in a directory only the supervisor's workers use:

    THREAD <proxy id>\\n  ->  <backend thread id>\\n, or -\\n (no such connection)
    CLOSE <proxy id>\\n   ->  OK\\n (the owner drops that client: its backend thread was
                                   killed by KILL CONNECTION)

The KILL itself then runs on the issuer's own backend connection, as for a local id, so
the backend checks the issuer's privilege; the owner only tells a thread id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from dataclasses import dataclass
from typing import Protocol

from proxy.session.kill import worker_of
from proxy.session.live import LiveSession

log = logging.getLogger(__name__)

#: Seconds to wait for a sibling's answer: a KILL must not hang on a stuck worker.
PEER_TIMEOUT = 2.0


@dataclass(frozen=True)
class WorkerSlot:
    """One worker's place among its siblings."""

    index: int
    workers: int
    directory: str

    def socket_path(self, index: int) -> str:
        return os.path.join(self.directory, f"worker-{index}.sock")


class SiblingProxies(Protocol):
    """Whom a KILL of a connection this process does not own asks: the other workers
    (``Peers``), or the other replicas (proxy.replicas.kill_bridge.ReplicaPeers)."""

    async def backend_thread(self, proxy_id: int) -> int | None:
        """The backend thread of another process's connection, or None (no such one)."""
        ...

    async def close_client(self, proxy_id: int) -> None:
        """Have the owner drop that client (after a KILL CONNECTION)."""
        ...


class Peers:
    """Asks the other workers about connections they own."""

    def __init__(self, slot: WorkerSlot) -> None:
        self.slot = slot

    async def backend_thread(self, proxy_id: int) -> int | None:
        """The backend thread of another worker's connection, or None (no such one)."""
        answer = await self._ask(b"THREAD", proxy_id)
        return int(answer) if answer.isdigit() else None

    async def close_client(self, proxy_id: int) -> None:
        await self._ask(b"CLOSE", proxy_id)

    async def _ask(self, verb: bytes, proxy_id: int) -> bytes:
        owner = worker_of(proxy_id, self.slot.workers)
        if owner is None or owner == self.slot.index:
            return b"-"
        request = b"%s %d\n" % (verb, proxy_id)
        try:
            return await asyncio.wait_for(self._exchange(owner, request), PEER_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("worker %d did not answer about connection %d: %r", owner, proxy_id, exc)
            return b"-"

    async def _exchange(self, owner: int, request: bytes) -> bytes:
        reader, writer = await asyncio.open_unix_connection(self.slot.socket_path(owner))
        try:
            writer.write(request)
            return (await reader.readline()).strip()
        finally:
            writer.close()


async def serve_peers(slot: WorkerSlot, sessions: dict[int, LiveSession]) -> asyncio.Server:
    """Answer the other workers about this worker's ``sessions``, until closed."""
    path = slot.socket_path(slot.index)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by the worker this one replaces
    return await asyncio.start_unix_server(functools.partial(_answer, sessions), path)


async def _answer(
    sessions: dict[int, LiveSession], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        line = await asyncio.wait_for(reader.readline(), PEER_TIMEOUT)
        writer.write(reply(sessions, line) + b"\n")
        await writer.drain()
    except (OSError, TimeoutError, ValueError):
        pass
    finally:
        writer.close()


def reply(sessions: dict[int, LiveSession], request: bytes) -> bytes:
    """The answer to one request line (see the module docstring)."""
    verb, _, number = request.strip().partition(b" ")
    session = sessions.get(int(number)) if number.isdigit() else None
    if session is None or session.backend is None:
        return b"-"
    if verb == b"THREAD":
        return b"%d" % session.backend.thread_id
    if verb == b"CLOSE":
        session.close_client()
        return b"OK"
    return b"-"
