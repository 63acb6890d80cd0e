// Keyspace: how an entity's shard key becomes its ksid, the 64-bit position that places it on a
// shard and inside the store's key order.
//
//   ksid = XXH64(shard key bytes, seed 0)
//
// The hash, its seed value and the byte encoding never change once data exists: every stored key
// and every shard range depends on them. The shard key is the entity id unless StoreOptions names a
// field for the kind (see options.h).
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace shardkit::store {

// The ksid of a shard key.
uint64_t Ksid(std::string_view shard_key);

// A half-open ksid range [begin, end), as shards own them. `end == 0` means "to the end of the
// keyspace" (Vitess `c0-`), so KsidRange{} is the whole keyspace and {0x40.., 0x80..} is `40-80`.
struct KsidRange {
  uint64_t begin = 0;
  uint64_t end = 0;

  bool Contains(uint64_t ksid) const { return ksid >= begin && (end == 0 || ksid < end); }
};

}  // namespace shardkit::store
