"""Connection ids that never collide across replicas: blocks of the id range, leased in Redis.

The proxy range (proxy.session.kill: 2^30 to 2^32) is cut into ``BLOCKS`` blocks of
``BLOCK_SIZE`` ids. Each proxy process (each worker of each replica) is a *member* with a
name of its own (host, pid, random). It claims a free block at start
(``SET mlproxy:ids:<block> <member> NX PX <lease>``, trying random blocks) and hands out
its ids in order without asking Redis again; halfway through a block it claims the next
one in the background. Every ``RENEW_EVERY`` seconds one script renews the lease of every
block it still holds: the current one, the next one, and each block that still names one
of its live connections (a pooled connection may live for days), so a block is free
again only when none of its ids is in use. The block's key also says who owns an id:
``owner_of`` is how a KILL on any replica finds the owner (proxy.replicas.kill_bridge).

If Redis cannot be reached when a block is needed (at start, or when one runs out), the
member takes a random block without a lease (logged once by the link's breaker) and the
next renewal claims it as soon as Redis answers. Should another member have claimed it
meanwhile, this one moves on to a new block for new connections; the few connections
given ids from the shared block might then share an id with the other member's (a KILL
of such an id reaches the connection of the replica it is sent to). A lease lapses only
if a member stays away from Redis for ``LEASE`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable, Iterable
from typing import Any

from proxy.replicas.codec import PREFIX
from proxy.replicas.link import RedisLink
from proxy.session.kill import PROXY_ID_BASE, PROXY_ID_END, ConnectionIds

log = logging.getLogger(f"mlproxy.{__name__}")

#: Ids per block: at 2,500 new connections a second, a block lasts about 7 minutes.
BLOCK_SIZE = 1 << 20
BLOCKS = (PROXY_ID_END - PROXY_ID_BASE) // BLOCK_SIZE
#: Seconds a lease lasts without renewal, and how often a member renews.
LEASE = 30.0
RENEW_EVERY = LEASE / 6
#: Random blocks tried before a claim gives up (a few hundred members take a few percent).
CLAIM_TRIES = 32

#: Renews each held block (KEYS) for its member (ARGV[1]) for ARGV[2] ms; a block no one
#: holds is claimed. Returns 1 per key kept, 0 per key another member holds.
_RENEW = """
local kept = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] or not owner then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    kept[i] = 1
  else
    kept[i] = 0
  end
end
return kept
"""
#: Deletes each key (KEYS) that the member (ARGV[1]) still holds.
_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""


def member_name() -> str:
    """This process's name among the members: host, pid, and a random part (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def block_of(proxy_id: int) -> int | None:
    """The block holding a proxy connection id (None: not a proxy id).

    >>> block_of(PROXY_ID_BASE + 1), block_of(PROXY_ID_BASE + BLOCK_SIZE), block_of(5)
    (0, 1, None)
    """
    if not PROXY_ID_BASE <= proxy_id < PROXY_ID_END:
        return None
    return (proxy_id - PROXY_ID_BASE) // BLOCK_SIZE


def block_key(block: int) -> str:
    return f"{PREFIX}ids:{block}"


class LeasedIds(ConnectionIds):
    """One member's connection ids (a ``ConnectionIds`` over leased blocks)."""

    def __init__(
        self,
        link: RedisLink,
        live_ids: Callable[[], Iterable[int]],
        member: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.link = link
        self.member = member or member_name()
        self._member = self.member.encode()
        self._live_ids = live_ids
        self._rng = rng or random.Random()
        self.block = -1
        self._spare: int | None = None
        self._claiming: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Claim the first block and keep the leases renewed until ``close()``."""
        self._use(await self._claim())
        self._renewer = asyncio.create_task(self._renew_forever(), name="mlproxy-id-leases")

    def next(self) -> int:
        self._last += 1
        if self._last >= self.end:
            spare, self._spare = self._spare, None
            self._use(spare if spare is not None else self._unleased_block())
            self._last = self.first + 1
        if self._spare is None and self._claiming is None and self._half_used():
            self._claiming = asyncio.create_task(self._claim_spare(), name="mlproxy-id-claim")
        return self._last

    async def owner_of(self, proxy_id: int) -> str | None:
        """The member that holds ``proxy_id``'s block (None: no one, or Redis failed)."""
        block = block_of(proxy_id)
        if block is None:
            return None

        async def read(client: Any) -> Any:
            return await client.get(block_key(block))

        owner = await self.link.attempt("connection owner", read, None)
        return None if owner is None else bytes(owner).decode("utf-8", "replace")

    async def close(self) -> None:
        """Stop renewing and give the blocks back."""
        for task in (self._renewer, self._claiming):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        held = sorted(self._held())

        async def release(client: Any) -> Any:
            return await client.eval(_RELEASE, len(held), *map(block_key, held), self._member)

        if held:
            await self.link.attempt("release id blocks", release, None)

    def _use(self, block: int) -> None:
        self.block = block
        self.first = PROXY_ID_BASE + block * BLOCK_SIZE
        self.end = self.first + BLOCK_SIZE
        self._last = self.first

    def _half_used(self) -> bool:
        return self._last - self.first > BLOCK_SIZE // 2

    def _unleased_block(self) -> int:
        """A random block taken without a lease (Redis unreachable); renewal claims it."""
        block = self._rng.randrange(BLOCKS)
        log.warning(
            "connection ids: no block could be leased from Redis %s; using block %d "
            "unleased until Redis answers",
            self.link.server,
            block,
        )
        return block

    async def _claim(self) -> int:
        """A newly leased block, or an unleased one when Redis cannot lease any."""
        lease_ms = int(LEASE * 1000)
        for _ in range(CLAIM_TRIES):
            block = self._rng.randrange(BLOCKS)
            if block in (self.block, self._spare):
                continue

            async def claim(client: Any, block: int = block) -> Any:
                return await client.set(block_key(block), self._member, nx=True, px=lease_ms)

            claimed = await self.link.attempt("lease id block", claim, None)
            if claimed:
                return block
            if not self.link.breaker.available():
                break
        return self._unleased_block()

    async def _claim_spare(self) -> None:
        try:
            self._spare = await self._claim()
        finally:
            self._claiming = None

    def _held(self) -> set[int]:
        blocks = {self.block} if self.block >= 0 else set()
        if self._spare is not None:
            blocks.add(self._spare)
        blocks.update(b for b in map(block_of, self._live_ids()) if b is not None)
        return blocks

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            await self.renew()

    async def renew(self) -> None:
        """Renew every held block's lease (claiming unleased ones); move on from a block
        another member holds."""
        held = sorted(self._held())

        async def renew(client: Any) -> Any:
            keys = map(block_key, held)
            return await client.eval(_RENEW, len(held), *keys, self._member, int(LEASE * 1000))

        kept = await self.link.attempt("renew id leases", renew, None)
        if kept is None:
            return
        lost = {block for block, ok in zip(held, kept, strict=True) if not ok}
        if self._spare in lost:
            self._spare = None
        if self.block in lost:
            log.warning(
                "connection ids: block %d is another replica's (its lease lapsed while Redis "
                "was away); new connections take ids from another block",
                self.block,
            )
            self._use(await self._claim())
