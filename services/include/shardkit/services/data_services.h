// The data service types of a node config (docs/configuration.md):
//   shard-map     the node's shard map: ranges, epoch, shard_keys; answers shardmap:get|set
//   store         an entity store (rocksdb | sqlite | memory), optionally one shard (shard = "40-80")
//                 behind a guard; its disk calls run on a small pool, never on I/O threads
//   shard-router  routes store:* messages to shards by a shard-map
//   cache         the entry cache; route it as store:*,kind:K and have the store serve
//                 store:*,kind:K,cache:true
// RegisterDataServices() registers them once (idempotent); `shardkit serve` calls it at start.
#pragma once

namespace shardkit::services {

void RegisterDataServices();

}  // namespace shardkit::services
