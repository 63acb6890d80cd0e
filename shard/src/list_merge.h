// The shard router's scatter/gather list as a stream: a k-way merge over per-shard pages, each
// shard asked for one page at a time, so what a list holds is bounded by the page size times the
// shards (plus the answer), however large skip$ is (docs/sharding.md, "Scatter/gather lists").
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <shardkit/message/handler.h>
#include <shardkit/store/list_order.h>

#include "cross_shard_move.h"

namespace shardkit::shard::internal {

// How a merged list ends: its answer, or moves to complete (then list again), or a map to
// refresh (then list again).
struct ListEnd {
  Result<Message> answer = Status::Internal("list not answered");
  std::vector<MoveMarker> markers;  // moves under way met in the shards' pages
  bool restart = false;             // a shard answered wrong_shard and the map was refreshed
};

struct ListMergeOptions {
  std::shared_ptr<const store::ListOrder> order;  // the client's query, validated
  std::string kind;
  std::vector<std::string> shards;  // names, in map order
  bool partial = false;             // a failing shard is listed as `missing` instead of failing
  size_t max_page = 1000;           // the most items one shard is asked for at once
  // Asks shard `index` for at most `limit` whole items after `cursor` ("" for the client's own
  // cursor); `reply` may run on any thread, or before `fetch` returns.
  std::function<void(size_t index, const std::string& cursor, size_t limit, ReplyFn reply)> fetch;
  // After a wrong_shard: whether the map changed, so the list should start again on it.
  std::function<bool()> refresh;
};

// The `q` a shard is asked with: the client's filters and sort, no skip or projection (the merge
// skips and projects), `limit` items after `cursor` (the client's own cursor when empty).
Result<std::string> ShardPageQuery(std::string_view client_q, const std::string& cursor,
                                   size_t limit);

// Merges the shards' pages into the answer a single store holding all their items would give.
void MergeList(ListMergeOptions options, std::function<void(ListEnd)> done);

}  // namespace shardkit::shard::internal
