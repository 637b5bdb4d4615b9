"""Connection ids leased in blocks from a real redis-server (proxy.replicas.ids): members
never share a block, a block stays leased while any of its ids is in use, a member whose
block was taken moves on, and a member started while Redis is away claims its block
when Redis is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from proxy.replicas.ids import BLOCK_SIZE, LeasedIds, block_key, block_of
from proxy.replicas.link import RedisLink
from proxy.session.kill import PROXY_ID_BASE, PROXY_ID_END
from tests.support.redis_server import RedisServer

T = TypeVar("T")


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(work())


def member(url: str, live: list[int] | None = None, name: str | None = None) -> LeasedIds:
    link = RedisLink(url, "replica_registry", "KILL reaches this replica's own connections only")
    return LeasedIds(link, lambda: live or [], member=name)


async def close(*members: LeasedIds) -> None:
    for ids in members:
        await ids.close()
        await ids.link.close()


def test_members_starting_together_never_share_a_block(redis_server: RedisServer) -> None:
    async def work() -> list[tuple[int, list[int]]]:
        members = [member(redis_server.url) for _ in range(40)]
        await asyncio.gather(*(ids.start() for ids in members))
        handed = [(ids.block, [ids.next() for _ in range(50)]) for ids in members]
        owners = [await members[0].owner_of(ids.next()) for ids in members]
        assert owners == [ids.member for ids in members]
        await close(*members)
        return handed

    handed = run(work)
    blocks = [block for block, _ in handed]
    assert len(set(blocks)) == 40
    every_id = [i for _, ids in handed for i in ids]
    assert len(set(every_id)) == len(every_id)
    assert all(PROXY_ID_BASE < i < PROXY_ID_END for i in every_id)
    assert all(block_of(i) == block for block, ids in handed for i in ids)
    with redis_server.client() as client:
        assert client.keys("mlproxy:ids:*") == []  # given back at close


def test_a_block_runs_out_into_the_next_claimed_in_advance(redis_server: RedisServer) -> None:
    async def work() -> None:
        ids = member(redis_server.url)
        await ids.start()
        first = ids.block
        ids._last = ids.first + BLOCK_SIZE // 2 + 1  # halfway: the next block is claimed
        ids.next()
        assert ids._claiming is not None
        await ids._claiming
        ids._last = ids.end - 2
        last_of_first, first_of_next = ids.next(), ids.next()
        assert block_of(last_of_first) == first != ids.block == block_of(first_of_next)
        assert await ids.owner_of(first_of_next) == ids.member
        await close(ids)

    run(work)


def test_a_block_stays_leased_while_a_connection_holds_one_of_its_ids(
    redis_server: RedisServer,
) -> None:
    async def work() -> None:
        live: list[int] = []
        ids = member(redis_server.url, live)
        await ids.start()
        live.append(ids.next())  # a pooled connection that lives on
        old = ids.block
        ids._use(await ids._claim())  # as if the block ran out: the next one in use
        with redis_server.client() as client:
            client.pexpire(block_key(old), 50)  # the lease is about to lapse...
        await ids.renew()  # ...and is renewed, since live[0] is in it
        with redis_server.client() as client:
            assert client.pttl(block_key(old)) > 1000
        await close(ids)

    run(work)


def test_a_member_whose_block_was_taken_moves_on(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def work() -> None:
        ids = member(redis_server.url)
        await ids.start()
        taken = ids.block
        with redis_server.client() as client:
            client.set(block_key(taken), "someone-else")  # its lease lapsed and was claimed
        await ids.renew()
        assert ids.block != taken
        assert await ids.owner_of(ids.next()) == ids.member
        await close(ids)

    with caplog.at_level(logging.WARNING, logger="mlproxy.proxy.replicas.ids"):
        run(work)
    assert "another replica's" in caplog.text


def test_a_member_started_while_redis_is_away_claims_its_block_later(
    redis_server: RedisServer,
) -> None:
    redis_server.stop()

    async def work() -> None:
        ids = member(redis_server.url)
        await ids.start()  # no lease: a random block, used at once
        handed = ids.next()
        redis_server.start()
        ids.link.breaker.succeeded()  # skip the breaker's wait
        await ids.renew()
        assert await ids.owner_of(handed) == ids.member
        await close(ids)

    run(work)
