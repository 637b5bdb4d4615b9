"""Worker processes answering each other about their connections (``--workers N``).

A client's KILL lands on whichever worker the kernel gave its connection, but the id it
names may belong to another worker (the mysql CLI's Ctrl-C opens a new connection to
send ``KILL QUERY``). The id's slice names the owner (proxy.session.kill.worker_of), which
answers on a Unix socket in a directory only the supervisor's workers use:

    THREAD <proxy id>\\n  ->  <backend thread id>\\n, or -\\n (no such connection)
    CLOSE <proxy id>\\n   ->  OK\\n (the owner drops that client: its backend thread was
                                   killed by KILL CONNECTION)
    QUERY <proxy id>\\n   ->  OK\\n (KILL QUERY: the owner stops that connection's ML
                                   statement, which may be waiting for its model)
    KILLED QUERY|CONNECTION <backend thread id>\\n  ->  OK\\n or -\\n (the same, for
                                   a KILL that named a backend thread: asked of every sibling)
    ML\\n                  ->  a JSON list of the owner's running ML statements
                                   (SHOW PROCESSLIST; each statement's text cut at
                                   PEER_INFO_CHARS)

The KILL itself runs on the issuer's own backend connection, as for a local id, so the
backend checks the issuer's privilege; the owner only tells a thread id, or acts on a
KILL that the backend accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from proxy.ml.activity import MLSnapshot
from proxy.session.kill import is_proxy_id, worker_of
from proxy.session.live import LiveSession

log = logging.getLogger(f"mlproxy.{__name__}")

#: Seconds to wait for a sibling's answer: a KILL must not hang on a stuck worker.
PEER_TIMEOUT = 2.0
#: The most characters of a statement's text a sibling sends for SHOW PROCESSLIST.
PEER_INFO_CHARS = 65535
#: The longest answer line read from a sibling (its ML statements, their text cut).
PEER_REPLY_LIMIT = 64 << 20


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

    async def killed(self, thread_id: int, query_only: bool) -> None:
        """A KILL the backend accepted names a connection this process does not serve:
        its owner stops that connection's ML statement (or drops its client)."""
        ...

    async def ml_statements(self) -> list[MLSnapshot]:
        """The ML statements the others run now (SHOW PROCESSLIST)."""
        ...


class Peers:
    """Asks the other workers about connections they own."""

    def __init__(self, slot: WorkerSlot) -> None:
        self.slot = slot

    async def backend_thread(self, proxy_id: int) -> int | None:
        """The backend thread of another worker's connection, or None (no such one)."""
        answer = await self._ask(b"THREAD", proxy_id)
        return int(answer) if answer.isdigit() else None

    async def killed(self, thread_id: int, query_only: bool) -> None:
        """A KILL the backend accepted names a thread this worker does not serve: a
        proxy id's owner acts on it; a backend thread id is told to every sibling."""
        if is_proxy_id(thread_id):
            await self._ask(b"QUERY" if query_only else b"CLOSE", thread_id)
            return
        kind = b"QUERY" if query_only else b"CONNECTION"
        request = b"KILLED %s %d\n" % (kind, thread_id)
        await asyncio.gather(*(self._request(w, request) for w in self._siblings()))

    async def ml_statements(self) -> list[MLSnapshot]:
        """The ML statements every sibling runs now."""
        answers = await asyncio.gather(*(self._request(w, b"ML\n") for w in self._siblings()))
        found = []
        for answer in answers:
            with contextlib.suppress(ValueError, TypeError):
                found += [MLSnapshot(*fields) for fields in json.loads(answer)]
        return found

    def _siblings(self) -> list[int]:
        return [w for w in range(self.slot.workers) if w != self.slot.index]

    async def _ask(self, verb: bytes, proxy_id: int) -> bytes:
        owner = worker_of(proxy_id, self.slot.workers)
        if owner is None or owner == self.slot.index:
            return b"-"
        return await self._request(owner, b"%s %d\n" % (verb, proxy_id))

    async def _request(self, owner: int, request: bytes) -> bytes:
        try:
            return await asyncio.wait_for(self._exchange(owner, request), PEER_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("worker %d did not answer %r: %r", owner, request.strip(), exc)
            return b"-"

    async def _exchange(self, owner: int, request: bytes) -> bytes:
        reader, writer = await asyncio.open_unix_connection(
            self.slot.socket_path(owner), limit=PEER_REPLY_LIMIT
        )
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
    words = request.split()
    if words == [b"ML"]:
        snapshots = [dataclasses.astuple(_cut(s)) for s in ml_snapshots(sessions)]
        return json.dumps(snapshots).encode()
    if len(words) == 3 and words[0] == b"KILLED" and words[2].isdigit():
        target = session_of_thread(sessions, int(words[2]))
        return _stop(target, words[1] == b"QUERY") if target is not None else b"-"
    if len(words) != 2 or not words[1].isdigit():
        return b"-"
    verb, number = words
    session = sessions.get(int(number))
    if session is None or session.backend is None:
        return b"-"
    if verb == b"THREAD":
        return b"%d" % session.backend.thread_id
    if verb in (b"CLOSE", b"QUERY"):
        return _stop(session, verb == b"QUERY")
    return b"-"


def _stop(session: LiveSession, query_only: bool) -> bytes:
    if query_only:
        session.kill_query()
    else:
        session.close_client()
    return b"OK"


def _cut(snapshot: MLSnapshot) -> MLSnapshot:
    return dataclasses.replace(snapshot, info=snapshot.info[:PEER_INFO_CHARS])


def session_of_thread(sessions: Mapping[int, LiveSession], thread_id: int) -> LiveSession | None:
    """The session whose backend connection is that backend thread, if it is ours."""
    for session in sessions.values():
        if session.backend is not None and session.backend.thread_id == thread_id:
            return session
    return None


def ml_snapshots(sessions: Mapping[int, LiveSession]) -> list[MLSnapshot]:
    """The ML statements this process's sessions run now, by backend thread."""
    return [
        session.running_ml.snapshot(session.backend.thread_id)
        for session in list(sessions.values())
        if session.running_ml is not None and session.backend is not None
    ]
