// Finding the ksid of a store:* message, shared by the router and the guard.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <shardkit/message/message.h>
#include <shardkit/message/status.h>
#include <shardkit/shard/shard_map.h>

namespace shardkit::shard::internal {

// The shard-key bytes of a scalar JSON value, as stores hash them: a string's bytes, otherwise
// the value's compact JSON text.
std::string ShardKeyBytes(const Value& value);

// The ksid a keyed single-entity message (save with ent, load/remove with id) goes to.
// nullopt: the message names no single key (a list, a bulk, a query, or a load by id of a kind
// sharded by a field without that field as a property). invalid: the key is malformed.
Result<std::optional<uint64_t>> MessageKsid(const Message& message, const ShardMap& map);

}  // namespace shardkit::shard::internal
