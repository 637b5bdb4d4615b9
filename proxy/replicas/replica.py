"""This process as one replica among others: what it shares through Redis, built from
the settings, started with the server and closed at its shutdown.

- ``--ml-cache redis://...``: the result cache's second layer (proxy.replicas.shared_cache).
- The replica registry (``--replica-registry URL``; by default ml_cache's Redis, ``off``
  to do without): connection ids leased in blocks (proxy.replicas.ids) and KILLs of other
  replicas' connections (proxy.replicas.kill_bridge). Replicas that share a cache sit
  behind one load balancer, so by default they share KILL too, with nothing more to set.

Each has its own client (its own connections and breaker): a registry that must wait
for a KILL's answer never holds up cache lookups, and the reverse.
"""

from __future__ import annotations

import logging

from proxy.config import Config, replica_registry_url
from proxy.replicas.ids import LeasedIds
from proxy.replicas.kill_bridge import ReplicaPeers
from proxy.replicas.link import RedisLink
from proxy.session.live import LiveSession
from proxy.session.peers import PEER_TIMEOUT

log = logging.getLogger(f"mlproxy.{__name__}")


class Replica:
    """The Redis-backed parts of one proxy process (each None when not configured)."""

    def __init__(self, config: Config, sessions: dict[int, LiveSession]) -> None:
        self.cache_link = (
            RedisLink(config.ml_cache, "ml_cache", "ML statements use the in-process cache only")
            if config.ml_cache
            else None
        )
        registry = replica_registry_url(config)
        self.registry_link = (
            RedisLink(
                registry,
                "replica_registry" if config.replica_registry else "ml_cache",
                "KILL reaches this replica's own connections only",
                socket_timeout=PEER_TIMEOUT + 1,
            )
            if registry
            else None
        )
        self.ids: LeasedIds | None = None
        self.peers: ReplicaPeers | None = None
        if self.registry_link is not None:
            self.ids = LeasedIds(self.registry_link, lambda: list(sessions))
            self.peers = ReplicaPeers(self.registry_link, self.ids, sessions)

    async def start(self) -> None:
        if self.cache_link is not None:
            log.info("ML answers shared through Redis %s", self.cache_link.server)
        if self.ids is not None and self.peers is not None:
            await self.ids.start()
            await self.peers.start()
            log.info(
                "replica %s: connection ids from block %d, KILLs across replicas through Redis %s",
                self.ids.member,
                self.ids.block,
                self.ids.link.server,
            )

    async def close(self) -> None:
        if self.peers is not None:
            await self.peers.close()
        if self.ids is not None:
            await self.ids.close()
        for link in (self.cache_link, self.registry_link):
            if link is not None:
                await link.close()
