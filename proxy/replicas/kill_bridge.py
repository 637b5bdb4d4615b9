"""KILL of another replica's connection, through Redis.

The mysql CLI's Ctrl-C opens a new connection to send ``KILL QUERY <id>``, and a load
balancer may hand it to any replica. The replica that gets it finds the id's owner from
the id's block (proxy.replicas.ids) and asks the owner, as worker processes ask each
other (proxy.session.peers), over Redis:

    PUBLISH mlproxy:kill:<owner>  "THREAD <proxy id> <reply key>"
        the owner answers RPUSH <reply key> "<backend thread id>" (or "-": no such one)
    PUBLISH mlproxy:kill:<owner>  "CLOSE <proxy id> <reply key>"
        after a KILL CONNECTION: the owner drops that client, and answers "OK"

and waits for the answer with BLPOP, at most ``PEER_TIMEOUT`` seconds. The KILL itself
then runs on the issuer's own backend connection (the replicas share the backend), so
the backend checks the issuer's privilege: the owner only tells a thread id. A PUBLISH
that reaches no one (the owner is gone or not subscribed) is an unknown id, error 1094.

Anyone who can write to the Redis can ask for these answers, or have a replica drop a
client: protect the Redis as the database (a password, TLS, a private network).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from proxy.ml.activity import MLSnapshot
from proxy.replicas.codec import PREFIX
from proxy.replicas.ids import LeasedIds
from proxy.replicas.link import RedisLink
from proxy.session.kill import is_proxy_id
from proxy.session.live import LiveSession
from proxy.session.peers import PEER_TIMEOUT, reply

log = logging.getLogger(f"mlproxy.{__name__}")

REPLY_PREFIX = f"{PREFIX}reply:"
#: Seconds an unread answer stays in Redis.
REPLY_EXPIRY_MS = 10_000
#: Seconds between two looks for a request while none comes (also how soon a
#: subscription notices that Redis went away).
LISTEN_POLL = 1.0


def channel(member: str) -> str:
    return f"{PREFIX}kill:{member}"


class ReplicaPeers:
    """Asks other replicas about their connections; answers them about this one's.
    Takes the place of proxy.session.peers.Peers (the same two questions)."""

    def __init__(self, link: RedisLink, ids: LeasedIds, sessions: dict[int, LiveSession]) -> None:
        self.link = link
        self.ids = ids
        self.sessions = sessions
        #: Requests of other replicas this one answered (for tests and curiosity).
        self.answered = 0
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def backend_thread(self, proxy_id: int) -> int | None:
        """The backend thread of another replica's connection, or None (no such one)."""
        answer = await self._ask("THREAD", proxy_id)
        return int(answer) if answer.isdigit() else None

    async def killed(self, thread_id: int, query_only: bool) -> None:
        """A KILL of another replica's connection id: its owner stops the connection's
        ML statement, or drops its client. A KILL naming a backend thread id reaches
        this replica's sessions only (the backend kills the thread itself; a session of
        another replica waiting on its model stops when it next uses the backend)."""
        if is_proxy_id(thread_id):
            await self._ask("QUERY" if query_only else "CLOSE", thread_id)

    async def ml_statements(self) -> list[MLSnapshot]:
        """Other replicas' ML statements are not asked for: SHOW PROCESSLIST shows their
        backend threads as the backend does (their own proxy shows their progress)."""
        return []

    async def _ask(self, verb: str, proxy_id: int) -> bytes:
        owner = await self.ids.owner_of(proxy_id)
        if owner is None or owner == self.ids.member:
            return b"-"
        reply_key = REPLY_PREFIX + uuid.uuid4().hex
        request = f"{verb} {proxy_id} {reply_key}"

        async def publish(client: Any) -> Any:
            return await client.publish(channel(owner), request)

        if not await self.link.attempt("KILL request", publish, 0):
            return b"-"  # nobody listens on that channel: the owner is gone

        async def wait(client: Any) -> Any:
            return await client.blpop([reply_key], timeout=PEER_TIMEOUT)

        popped = await self.link.attempt("KILL answer", wait, None, timeout=PEER_TIMEOUT + 1)
        if popped is None:
            log.warning("replica %s did not answer about connection %d", owner, proxy_id)
            return b"-"
        return bytes(popped[1]).strip()

    async def start(self) -> None:
        """Listen for other replicas' requests until ``close()``; waits (briefly) for the
        subscription, so a KILL right after start-up finds this replica."""
        self._listener = asyncio.create_task(self._listen_forever(), name="mlproxy-kill-bridge")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.link.timeout * 2):
                await self._subscribed.wait()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    async def _listen_forever(self) -> None:
        """Subscribe and answer; when Redis fails, try again later (the link's breaker
        logs it once)."""
        while True:
            if self.link.breaker.allows():
                try:
                    await self._listen()
                except self.link.errors as exc:
                    self.link.breaker.failed("KILL channel", exc)
            self._subscribed.clear()
            await asyncio.sleep(LISTEN_POLL)

    async def _listen(self) -> None:
        pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel(self.ids.member))
            self.link.breaker.succeeded()
            self._subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=LISTEN_POLL)
                if message is not None and message.get("type") == "message":
                    await self._answer(bytes(message["data"]))
        finally:
            with contextlib.suppress(*self.link.errors):
                await pubsub.aclose()

    async def _answer(self, request: bytes) -> None:
        verb, _, rest = request.partition(b" ")
        number, _, reply_key = rest.partition(b" ")
        if not reply_key.startswith(REPLY_PREFIX.encode()) or b" " in reply_key:
            log.debug("ignoring a malformed KILL request on the channel")
            return
        answer = reply(self.sessions, verb + b" " + number)
        self.answered += 1

        async def send(client: Any) -> Any:
            pipe = client.pipeline(transaction=False)
            pipe.rpush(reply_key, answer)
            pipe.pexpire(reply_key, REPLY_EXPIRY_MS)
            return await pipe.execute()

        await self.link.attempt("KILL reply", send, None)
