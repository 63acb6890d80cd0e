// Moving an entity between shards when a save changes its shard-key value (docs/sharding.md,
// "Moving an entity between shards"): a) the old shard turns the entity into a move marker, b) the
// new shard inserts it at the next version, c) the old shard removes the marker. Any router
// operation that meets a marker completes b and c (both idempotent) before it answers.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/handler.h>

namespace shardkit::shard::internal {

// What a router offers the move code: ask one shard by name, ask every shard, route the client's
// message again from the start (after a move completed, the state to route by changed).
struct RouterSteps {
  using Answers = std::vector<std::optional<Result<Message>>>;  // per shard, in map order
  std::function<void(const std::string& shard, Message message, ReplyFn reply)> send;
  std::function<void(Message message, std::function<void(std::vector<std::string>, Answers)>)>
      ask_all;
  std::function<void(ReplyFn reply)> retry;
  // Routes the message again to look once more for an id found only as tombstones (`seen`, of
  // the previous round): the same tombstones twice in a row mean the entity is absent.
  std::function<void(std::string seen, ReplyFn reply)> recheck;
  std::string seen;
};

// A move marker as loaded from the shard holding it.
struct MoveMarker {
  std::string kind, id;
  std::string from, to;  // the shard holding the marker, the shard the entity moves to
  uint64_t version = 0;  // the marker's version: the moved entity's version on `to`
  std::string ent;       // the client's `ent` text, byte for byte (its receipt's fingerprint)
  std::optional<std::string> id_param;  // the client's `id` property
  std::optional<uint64_t> expected;     // the client's `version` property
  std::optional<int64_t> ttl;
  std::string key;    // the client's idempotency key ("" if none)
  bool done = false;  // a tombstone: the move completed
};

// The marker in a loaded entity's JSON text; nullopt if it is an ordinary entity.
std::optional<MoveMarker> MarkerOf(std::string_view kind, std::string_view shard,
                                   std::string_view ent_text);

// Whether an answer shows a move under way: a loaded marker, or a write refused because of one.
bool MeetsMarker(const Result<Message>& answer);

// The save of a field-sharded kind with an id, to the shard `target` its new value belongs to:
// every shard is asked where the entity is; a marker met is completed first; an entity stored on
// another shard is moved (steps a to c); otherwise the save goes to `target`, checked against the
// version found (`observed_version`) so it never lands beside a copy that moved meanwhile.
void SaveByField(RouterSteps steps, Message save, std::string target, ReplyFn reply);

// Answers a load or remove by id from every shard's answer (`ask_all`): a marker met is completed
// and the message routed again; of two copies (a reader between steps b and c) the newer answers.
// With `answer_moved` (a load), a marker met answers the moved entity once its move completed.
void AnswerFromAll(const RouterSteps& steps, const std::vector<std::string>& shards,
                   RouterSteps::Answers answers, const std::string& kind, const std::string& id,
                   bool answer_moved, ReplyFn reply);

// For an answer from one shard: completes the move of a marker it shows, then routes the
// message again; any other answer is replied as is.
void Settle(RouterSteps steps, const std::string& shard, std::string kind, std::string id,
            Result<Message> answer, ReplyFn reply);

// Completes the moves of `markers` (met by a list or a bulk load), one after another; then `then`.
void CompleteAll(RouterSteps steps, std::vector<MoveMarker> markers, std::function<void()> then);

// One item of a bulk save, planned for a shard; `id` is set for an item with an id of a kind
// sharded by a field (its entity may be stored elsewhere).
struct BulkItem {
  size_t position;
  std::string text;
  std::optional<std::string> id;
};
using BulkPlan = std::vector<std::vector<BulkItem>>;  // per shard index, in request order

// A bulk save does not move entities: every shard is asked for the items with ids, and an item
// stored on another shard than its planned one is refused (`invalid`, naming `key_field`; its
// answer is set in `items`). `send` gets the plan of the other items.
void RefuseBulkMoves(RouterSteps steps, const std::string& kind, const std::string& key_field,
                     std::shared_ptr<BulkPlan> plan,
                     std::shared_ptr<std::vector<std::string>> items,
                     std::function<void(std::shared_ptr<BulkPlan>)> send, ReplyFn reply);

// invalid for a client's message with a move step's fields or an entity with `moving$`.
Status RefuseMoveFields(const Message& message);

// `s` from shard `shard`, its message prefixed and its details naming the shard.
Status ShardError(std::string_view shard, const Status& s);

// Whether the bulk-load item `item` ({"ent":…}) holds a newer entity than the item `than`.
bool NewerItem(std::string_view item, std::string_view than);

}  // namespace shardkit::shard::internal
