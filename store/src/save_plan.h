// Validating a SaveRequest and finding an entity's ksid: the engine-independent half of Save.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include <shardkit/message/status.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/id_generator.h>
#include <shardkit/store/options.h>

namespace shardkit::store::internal {

// A SaveRequest that passed every input check.
struct ValidSave {
  std::string kind;
  std::string id;
  rapidjson::Document ent;
  uint64_t ksid = 0;
  int64_t expires_at_ms = 0;  // 0: never
  std::optional<uint64_t> expected_version;
  bool insert_only = false;
  std::optional<uint64_t> observed_version;
  SaveRequest::MoveStep move = SaveRequest::MoveStep::kNone;
  uint64_t at_version = 0;
};

// Whether a stored entity is a cross-shard move marker (it has the "moving$" property).
bool IsMoveMarker(std::string_view stored);

// invalid naming the field for bad input; generates the id last, so a rejected request uses none.
Result<ValidSave> ValidateSave(const SaveRequest& request, const StoreOptions& options,
                               IdGenerator& ids, int64_t now_ms);

// Whether `kind` is sharded by a field other than the id (then an id index maps id -> ksid).
bool ShardedByField(const StoreOptions& options, std::string_view kind);

// The ksid of an entity of `kind`: Ksid(id), or Ksid of its shard-key field.
Result<uint64_t> EntityKsid(const StoreOptions& options, std::string_view kind, std::string_view id,
                            const rapidjson::Value& ent);

}  // namespace shardkit::store::internal
