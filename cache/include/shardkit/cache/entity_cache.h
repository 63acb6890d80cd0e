// EntityCache: a read-through cache in front of an entity store, added by configuration only
// (after *The Tao of Microservices*). It reaches the store one of two
// ways (docs/architecture.md, "Composing a decorator"):
//   - installed as an override of the store's routes (the store is in the same process), it
//     calls the store with Context::Prior;
//   - otherwise it takes `store:*,kind:K` and forwards to the real store through the bus as
//     `store:*,kind:K,cache:true`, which the store (or a shard router) is configured to serve.
//
// Behaviour:
//   - store:load by id is read-through: a hit answers from memory; a miss loads from the store
//     and fills the cache. Concurrent misses for one key cost one store load (single-flight);
//     the other callers wait for it ("coalesced").
//   - not_found answers are cached for `not_found_ttl_ms` (0: not cached). Store errors are never
//     cached. Every entry lives at most `ttl_ms`, and never past the entity's own expiry (the
//     `expires_at` of a store:load reply, for an entity saved with a `ttl`).
//   - store:save and store:remove go to the store first; on its answer the affected entries are
//     deleted (never updated). A refill that started before a write must not put the old value
//     back: every invalidation marks a load of that key in flight stale and detaches it, so it
//     answers its waiters but does not fill ("stale refills prevented"), and later readers start
//     a fresh load.
//   - store:list passes through, unless `cache_lists`: then pages are cached per query for
//     `list_ttl_ms` and dropped on any write to the kind. Bulk loads (`ids`) pass through.
//   - Memory is bounded in bytes, charged by the real size of keys and values plus a fixed
//     per-entry overhead. When full, W-TinyLFU (the default) or LRU decides what stays.
//   - The table is striped by key hash (one lock per stripe of at least 128 KiB, up to 16), and a
//     cached answer is immutable and shared: a hit holds a stripe's lock only to find it.
//   - Invalidate(kind, id) drops one key from outside (the change-feed follower calls it for
//     writes made behind the cache's back, by other nodes).
//   - A message already marked cache:true reaching a cache that has no prior means no store serves
//     that pattern: it answers `unavailable` rather than loop.
//
// Thread-safety: all methods may be called from any thread; each stripe has its own lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <shardkit/message/clock.h>
#include <shardkit/message/handler.h>

namespace shardkit::cache {

// Which entries stay when the cache is full (docs/cache.md, "Admission and eviction").
enum class CachePolicy {
  kTinyLfu,  // W-TinyLFU: a newcomer displaces an entry only if it is used more often
  kLru,      // least recently used goes
};

struct CacheOptions {
  size_t max_bytes = size_t{64} << 20;
  CachePolicy policy = CachePolicy::kTinyLfu;
  int64_t ttl_ms = 60'000;
  int64_t not_found_ttl_ms = 1'000;
  bool cache_lists = false;
  int64_t list_ttl_ms = 5'000;
  const Clock* clock = nullptr;  // nullptr: SystemClock::Default()
};

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint64_t coalesced = 0;  // callers that waited for another caller's load
  uint64_t stale_refills_prevented = 0;
  uint64_t invalidations = 0;
  uint64_t bytes_used = 0;
  uint64_t entries = 0;
  double hit_ratio() const {
    return hits + misses == 0 ? 0.0 : static_cast<double>(hits) / (hits + misses);
  }
};

class EntityCache : public Handler {
 public:
  virtual CacheStats stats() const = 0;
  // Drops the entry of (kind, id) and every cached list of `kind`.
  virtual void Invalidate(std::string_view kind, std::string_view id) = 0;
  // Drops everything.
  virtual void Clear() = 0;
  // A handler answering stats as a message: {"hits":…,"misses":…,"hit_ratio":…,…}.
  virtual std::shared_ptr<Handler> StatsHandler() = 0;
};

std::shared_ptr<EntityCache> MakeEntityCache(CacheOptions options = {});

}  // namespace shardkit::cache
