#include "bulk_plan.h"

#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/store/keyspace.h>

namespace shardkit::shard::internal {

LoadPlan PlanLoad(const rapidjson::Document& ids, const ShardMap& map, bool by_id) {
  LoadPlan plan(map.shards().size());
  for (size_t i = 0; i < ids.Size(); ++i) {
    const rapidjson::Value& id = ids[static_cast<rapidjson::SizeType>(i)];
    std::string text = ToJsonText(id);
    for (size_t s = 0; s < map.shards().size(); ++s) {
      if (by_id) {
        std::string key = id.IsString() ? std::string(id.GetString(), id.GetStringLength()) : text;
        if (&map.ShardFor(store::Ksid(key)) != &map.shards()[s]) continue;
      }
      auto& [positions, array] = plan[s];
      array += array.empty() ? "[" : ",";
      array += text;
      positions.push_back(i);
    }
  }
  return plan;
}

void FillBulkAnswers(const Shard& shard, const std::vector<BulkItem>& planned,
                     const Result<Message>& a, std::vector<std::string>& items) {
  rapidjson::Document shard_items;
  if (a.ok() && a->GetArrayJson("items"))
    shard_items.Parse(a->GetArrayJson("items")->data(), a->GetArrayJson("items")->size());
  for (size_t j = 0; j < planned.size(); ++j) {
    size_t position = planned[j].position;
    if (a.ok() && shard_items.IsArray() && j < shard_items.Size()) {
      items[position] = ToJsonText(shard_items[static_cast<rapidjson::SizeType>(j)]);
    } else {
      Status s = a.ok() ? Status::Internal("shard answered without items") : a.status();
      items[position] = ToJson(ErrorMessage(ShardError(shard.name, s)));
    }
  }
}

}  // namespace shardkit::shard::internal
