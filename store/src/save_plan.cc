#include "save_plan.h"

#include <limits>

#include "entity_json.h"
#include "validation.h"

namespace shardkit::store::internal {
namespace {

const std::string* ShardKeyField(const StoreOptions& options, std::string_view kind) {
  if (options.shard_key_fields.empty()) return nullptr;  // the usual case: every kind by id
  auto it = options.shard_key_fields.find(std::string(kind));
  if (it == options.shard_key_fields.end() || it->second == "id") return nullptr;
  return &it->second;
}

}  // namespace

MoveState MoveStateOf(std::string_view stored) {
  if (stored.find("\"moving$\"") == std::string_view::npos) return MoveState::kNone;  // usually
  rapidjson::Document doc;
  doc.Parse(stored.data(), stored.size());
  const rapidjson::Value* moving = doc.IsObject() ? FindMember(doc, kMovingField) : nullptr;
  if (moving == nullptr) return MoveState::kNone;
  const rapidjson::Value* done = moving->IsObject() ? FindMember(*moving, "done") : nullptr;
  return done != nullptr && done->IsTrue() ? MoveState::kMoved : MoveState::kMoving;
}

std::string MovedTombstone(std::string_view marker) {
  rapidjson::Document doc;
  doc.Parse(marker.data(), marker.size());
  rapidjson::Value& moving = doc[kMovingField.data()];
  moving.RemoveMember("done");
  moving.AddMember("done", true, doc.GetAllocator());
  return Compact(doc);
}

bool ShardedByField(const StoreOptions& options, std::string_view kind) {
  return ShardKeyField(options, kind) != nullptr;
}

Result<uint64_t> EntityKsid(const StoreOptions& options, std::string_view kind, std::string_view id,
                            const rapidjson::Value& ent) {
  const std::string* field = ShardKeyField(options, kind);
  if (field == nullptr) return Ksid(id);
  const rapidjson::Value* v = FindMember(ent, *field);
  if (v == nullptr)
    return Status::InvalidField(*field,
                                "missing; it is the shard key of kind " + std::string(kind));
  if (v->IsString()) return Ksid(std::string_view(v->GetString(), v->GetStringLength()));
  if (!IsScalar(*v)) return Status::InvalidField(*field, "the shard key must be a JSON scalar");
  return Ksid(Compact(*v));
}

Result<ValidSave> ValidateSave(const SaveRequest& request, const StoreOptions& options,
                               IdGenerator& ids, int64_t now_ms,
                               rapidjson::MemoryPoolAllocator<>& pool) {
  ValidSave save(pool);
  save.ent_bytes = request.ent.size();
  if (Status s = CheckKind(request.kind); !s.ok()) return s;
  save.kind = request.kind;
  if (request.ent.size() > options.max_value_bytes) {
    return Status::InvalidField("ent", std::to_string(request.ent.size()) +
                                           " bytes is above the limit of " +
                                           std::to_string(options.max_value_bytes));
  }
  if (Status s = ParseObject(request.ent, "ent", save.ent); !s.ok()) return s;

  // The id: the parameter, else the entity's own "id", else generated (below, once all else
  // passed).
  save.id = request.id;
  if (!save.id.empty()) {
    if (Status s = CheckId(save.id); !s.ok()) return s;
  }
  if (const rapidjson::Value* ent_id = FindMember(save.ent, "id"); ent_id != nullptr) {
    if (!ent_id->IsString()) return Status::InvalidField("id", "the entity's id must be a string");
    std::string_view inner(ent_id->GetString(), ent_id->GetStringLength());
    if (save.id.empty()) {
      if (Status s = CheckId(inner); !s.ok()) return s;
      save.id = inner;
    } else if (inner != save.id) {
      return Status::InvalidField("id", "the entity's id \"" + std::string(inner) +
                                            "\" differs from the id \"" + save.id +
                                            "\" it is saved under");
    }
  }
  if (request.ttl_seconds) {
    constexpr int64_t kMaxTtlSeconds = std::numeric_limits<int64_t>::max() / 1000 / 2;
    if (*request.ttl_seconds <= 0 || *request.ttl_seconds > kMaxTtlSeconds) {
      return Status::InvalidField("ttl", "must be a positive number of seconds");
    }
    save.expires_at_ms = now_ms + *request.ttl_seconds * 1000;
  }
  save.expected_version = request.expected_version;
  save.insert_only = request.insert_only;
  save.observed_version = request.observed_version;
  save.move = request.move;
  save.at_version = request.at_version;
  const bool marker = FindMember(save.ent, kMovingField) != nullptr;
  if (marker != (save.move == SaveRequest::MoveStep::kMark)) {
    return marker ? Status::InvalidField("ent.moving$",
                                         "is reserved for the move markers of shard routers")
                  : Status::InvalidField("ent.moving$", "a move marker needs it");
  }
  if (save.move == SaveRequest::MoveStep::kMark && !save.expected_version)
    return Status::InvalidField("version", "a move marker needs the version it replaces");
  if (save.move == SaveRequest::MoveStep::kInsert && save.at_version == 0)
    return Status::InvalidField("at_version", "must be a positive integer");
  if (save.id.empty() && !ShardedByField(options, save.kind)) {
    save.id = ids.NextId();
  } else if (save.id.empty()) {
    // Check the shard key before spending an id on a request that will fail.
    if (Result<uint64_t> k = EntityKsid(options, save.kind, "", save.ent); !k.ok())
      return k.status();
    save.id = ids.NextId();
  }
  Result<uint64_t> ksid = EntityKsid(options, save.kind, save.id, save.ent);
  if (!ksid.ok()) return ksid.status();
  save.ksid = *ksid;
  return save;
}

}  // namespace shardkit::store::internal
