// The shard router and the shard guard: how store:* messages find their shard.
//
// ShardRouter (a Handler, routed e.g. as `store:*,kind:entry`) computes the ksid of a keyed
// message — Ksid(id), or Ksid(value of the kind's shard-key field) — finds the shard in its map,
// and forwards the message through the bus with `shard:<range>` and `epoch:<map epoch>` added, so
// shard services listen on `store:*,shard:40-80` (more specific, so they win). A save without an
// id gets one first (generated; derived from the kind and the idempotency key for a keyed save,
// so every copy reaches the same shard and its receipt), then is routed.
//   - A save with an id of a field-sharded kind first asks every shard for the id: if another
//     one stores it, the entity is moved to the new value's shard (a move marker, an insert at
//     the next version, the marker cleared; any operation that meets a marker completes its move
//     first — docs/sharding.md, "Moving an entity between shards"). In a bulk save such an item
//     is refused (`invalid`, naming the field) rather than written as a second copy.
//   - A `wrong_shard` answer makes the router refresh its map and retry once; the client never
//     sees the first failure.
//   - store:list and store:remove by query scatter to every shard in parallel and gather: pages
//     merge in list order (store/list_order.h), skip/limit apply across shards, and the cursor is
//     one every shard accepts. Without a limit the answer is one page of kDefaultListLimit items
//     (as a store's). A list merges as a stream: each shard is asked for one page at a time (at
//     most max_shard_page items), skipped items are discarded as they merge, so a list holds at
//     most a page per shard besides its answer, however large skip$ is. A shard
//     that fails makes the whole answer an error naming the shard, unless the message has
//     `partial:true`: then the answer lists `missing` shards.
//   - Bulk saves (`ents`) and loads (`ids`) are split per shard and answered per item, in order.
//   - A load or remove by id of a kind sharded by a field needs that field's value as a message
//     property (e.g. `user:"ann"`); without it the router asks every shard.
//
// ShardGuard decorates a shard's store service (it overrides the store's routes and reaches the
// store with Context::Prior) and refuses, with `wrong_shard` and details
// {"epoch":E,"shard":"40-80"}, a message whose key is outside the shard's range, or whose `epoch`
// differs from the shard's map (a newer epoch first makes the guard refresh its map). Writes
// (save, remove) pass through the optional WriteGate, which a migration's cutover closes.
//
// Thread-safety: both handlers may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <shardkit/message/handler.h>
#include <shardkit/shard/shard_map.h>
#include <shardkit/shard/write_gate.h>
#include <shardkit/store/id_generator.h>

namespace shardkit::shard {

// Fetches the authoritative shard map (from config, a map service, a KV store…).
using MapRefresher = std::function<Result<ShardMap>()>;

struct ShardRouterOptions {
  std::shared_ptr<ShardMapHolder> map;      // required
  MapRefresher refresh;                     // nullptr: wrong_shard is answered as is
  std::shared_ptr<store::IdGenerator> ids;  // for saves without an id; required
  // The most items a list asks one shard for at once (the page the merge holds per shard).
  size_t max_shard_page = 1000;
  // The node's bound on one reply ([node] max_reply_bytes): a remove by query whose removed
  // entities would not fit in it is refused before any shard removes anything.
  size_t max_reply_bytes = 16 * 1024 * 1024;
};

std::shared_ptr<Handler> MakeShardRouter(ShardRouterOptions options);

struct ShardGuardOptions {
  std::string shard;                    // the range this service owns, e.g. "40-80"
  std::shared_ptr<ShardMapHolder> map;  // the node's map; required
  MapRefresher refresh;                 // called when a message carries a newer epoch
  std::shared_ptr<WriteGate> gate;      // optional: writes pass through it (live migration)
};

// The guard of one shard, a decorator: route the shard's patterns to its store service, then
// override them with the guard (Router::Override, Bus::Override); it reaches the store with
// Context::Prior (docs/architecture.md, "Composing a decorator").
std::shared_ptr<Handler> MakeShardGuard(ShardGuardOptions options);

}  // namespace shardkit::shard
