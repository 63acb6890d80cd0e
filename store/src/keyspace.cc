#include <shardkit/store/keyspace.h>

#include <xxhash.h>

namespace shardkit::store {

uint64_t Ksid(std::string_view shard_key) { return XXH64(shard_key.data(), shard_key.size(), 0); }

}  // namespace shardkit::store
