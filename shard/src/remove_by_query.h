// A remove by query across shards answers every removed entity, so its reply could outgrow the
// node's max_reply_bytes after the shards removed their parts. The router first measures each
// shard's part (a list of the same query), refuses before anything is removed when they do not
// fit together, and gives each shard a share of the bound it must fit in, or remove nothing
// (docs/sharding.md, "Removing by query").
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <shardkit/message/handler.h>

namespace shardkit::shard::internal {

using ShardAnswers = std::vector<std::optional<Result<Message>>>;  // per shard, in map order

// The store:list that measures what a remove by query `remove` would remove on a shard: the same
// filters, every match (the shard's own bound stops it early), whole entities, key order.
Result<Message> MeasureRemoval(const Message& remove);

// From the measuring lists' answers: each shard's share of `bound` bytes of removed entities, or
// the refusal (nothing removed) when they do not fit together or a shard failed.
Result<std::map<std::string, uint64_t>> RemovalShares(const std::vector<std::string>& shards,
                                                      ShardAnswers answers, size_t bound);

// The answer to the client from the shards' removes: every removed entity and the count, or an
// error naming the shards that failed and what the others removed.
Result<Message> JoinRemovals(const std::vector<std::string>& shards, ShardAnswers answers);

}  // namespace shardkit::shard::internal
