// The data service types of a node config (docs/configuration.md):
//   shard-map     the node's shard map: ranges, epoch, shard_keys; answers shardmap:get|set
//   store         an entity store (rocksdb | sqlite | memory), optionally one shard
//                 (shard = "40-80") behind its guard, installed over the store's routes; its disk
//                 calls run on a small pool, never on I/O threads
//   shard-router  routes store:* messages to shards by a shard-map
//   cache         the entry cache: over a store of this node (decorates = "<store>"), or routed
//                 as store:*,kind:K with the store elsewhere serving store:*,kind:K,cache:true
//   migrator      live migrations between shards served in this node (migrate:*)
//   command-log   CQRS write side: command log + command service + applier (docs/cqrs.md)
//   projection    CQRS read model over a command-log or a change feed (docs/cqrs.md)
// RegisterDataServices() registers them once (idempotent); `shardkit serve` calls it at start.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shardkit/services/registry.h"
#include "shardkit/shard/shard_map.h"
#include "shardkit/shard/write_gate.h"
#include "shardkit/store/entity_store.h"

namespace shardkit::services {

void RegisterDataServices();

// What a live migration needs of a shard served in this process: its store and the gate of its
// guard. Filled by `store` services with a `shard` key; `nullptr` store when unknown.
struct ServedShard {
  std::shared_ptr<store::EntityStore> store;
  std::shared_ptr<shard::WriteGate> gate;
};
ServedShard FindServedShard(const std::string& canonical_shard_name);
// The same in a node's own directory (an in-process node of the testing cluster).
ServedShard FindServedShard(const ServiceDirectory& directory,
                            const std::string& canonical_shard_name);
// The process's shard map named `map` ("main" by default), or null.
std::shared_ptr<shard::ShardMapHolder> FindShardMap(const std::string& map);
std::shared_ptr<shard::ShardMapHolder> FindShardMap(const ServiceDirectory& directory,
                                                    const std::string& map);
// The names of the process's shard maps (cluster mode keeps each in the maps bucket).
std::vector<std::string> ShardMapNames();
// How to fetch the map of `holder` from its authority at once: a `from` follower's pull, or in
// cluster mode a read of its KV key. Shard routers and guards call it after a `wrong_shard`, so a
// request racing a cutover is retried with the new map instead of failing. Kept in the process's
// directory; `pull` nullptr removes it.
using ShardMapPull = std::function<void()>;
void SetShardMapPull(const shard::ShardMapHolder* holder, std::shared_ptr<ShardMapPull> pull);

}  // namespace shardkit::services
