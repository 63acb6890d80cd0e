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
  // The entity's values live in `pool`; its parse stacks take their memory from the heap through
  // one allocator that every parse shares (each would make its own otherwise).
  explicit ValidSave(rapidjson::MemoryPoolAllocator<>& pool)
      : ent(&pool, kParseStackBytes, &ParseStacks()) {}
  static constexpr size_t kParseStackBytes = 1024;
  static rapidjson::CrtAllocator& ParseStacks() {
    static rapidjson::CrtAllocator heap;  // stateless
    return heap;
  }
  std::string kind;
  std::string id;
  rapidjson::Document ent;
  size_t ent_bytes = 0;  // the entity's text as sent: the stored text is about as long
  uint64_t ksid = 0;
  int64_t expires_at_ms = 0;  // 0: never
  std::optional<uint64_t> expected_version;
  bool insert_only = false;
  std::optional<uint64_t> observed_version;
  SaveRequest::MoveStep move = SaveRequest::MoveStep::kNone;
  uint64_t at_version = 0;
};

// What a stored row is to a cross-shard move (its "moving$" property): an entity, a move marker
// (the move is under way), or the tombstone a completed move leaves on the old shard for a while
// (moving$.done), so that a router looking for the id never finds it absent everywhere while it
// moves (docs/sharding.md).
enum class MoveState { kNone, kMoving, kMoved };
MoveState MoveStateOf(std::string_view stored);
// What a save needs of the row it replaces, expired or not: read without a copy of its value.
struct StoredHeader {
  bool found = false;  // false: no row, the other fields are zero
  uint64_t ksid = 0;
  uint64_t version = 0;
  int64_t expires_at_ms = 0;
  MoveState move = MoveState::kNone;
};
// The tombstone of a completed move: the marker's text with moving$.done set.
std::string MovedTombstone(std::string_view marker);
// How long the tombstone of a completed move stays (it expires like an entity with a ttl).
inline constexpr int64_t kMovedTombstoneMs = 10 * 60 * 1000;

// invalid naming the field for bad input; generates the id last, so a rejected request uses none.
// The parsed entity lives in `pool`, which must outlive the result.
Result<ValidSave> ValidateSave(const SaveRequest& request, const StoreOptions& options,
                               IdGenerator& ids, int64_t now_ms,
                               rapidjson::MemoryPoolAllocator<>& pool);

// Whether `kind` is sharded by a field other than the id (then an id index maps id -> ksid).
bool ShardedByField(const StoreOptions& options, std::string_view kind);

// The ksid of an entity of `kind`: Ksid(id), or Ksid of its shard-key field.
Result<uint64_t> EntityKsid(const StoreOptions& options, std::string_view kind, std::string_view id,
                            const rapidjson::Value& ent);

}  // namespace shardkit::store::internal
