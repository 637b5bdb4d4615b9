"""What the replicas of one deployment share through a Redis (or Valkey): a second layer
of the ML result cache (shared_cache, with codec), and the replica registry that keeps
connection ids unique across replicas and carries KILLs of another replica's connection
(ids, kill_bridge), all over one careful client (link). Wired up by replica."""
