// How the shard router splits a bulk load per shard and joins a bulk save's answers per item.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <utility>
#include <vector>

#include <shardkit/message/message.h>
#include <shardkit/shard/shard_map.h>

#include "cross_shard_move.h"

namespace shardkit::shard::internal {

// Per shard of a map: the positions of the ids it is asked for and their JSON array text.
using LoadPlan = std::vector<std::pair<std::vector<size_t>, std::string>>;

// Id-sharded kinds (`by_id`) ask each id's shard; field-sharded kinds ask every shard for every
// id.
LoadPlan PlanLoad(const rapidjson::Document& ids, const ShardMap& map, bool by_id);

// One shard's answer `a` to its part of a bulk save, item by item into `items` (at each planned
// item's position): the shard's own answer for the item, or its error naming the shard.
void FillBulkAnswers(const Shard& shard, const std::vector<BulkItem>& planned,
                     const Result<Message>& a, std::vector<std::string>& items);

}  // namespace shardkit::shard::internal
