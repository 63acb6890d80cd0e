// The store:* protocol over an EntityStore: validation of message fields, translation to store
// calls, and reply building. Replies embed stored JSON text as is (no re-encoding).
#include "shardkit/store/service.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "change_waits.h"
#include "receipt.h"
#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/store/replication.h"

namespace shardkit::store {
namespace {

using internal::ChangeWaits;

Result<std::string> RequireKind(const Message& m) {
  const Value* kind = m.Find("kind");
  if (kind == nullptr) return Status::InvalidField("kind", "is required");
  if (kind->type != ValueType::kString) return Status::InvalidField("kind", "must be a string");
  return std::string(kind->text);
}

bool IsUnsignedInteger(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// An id is a non-empty string or a non-negative integer (kept as its decimal text); a view of
// the message's own text.
Result<std::string_view> IdFromValue(const Value* id, std::string_view field) {
  if (id == nullptr) return Status::InvalidField(field, "is required");
  if (id->type == ValueType::kString) return std::string_view(id->text);
  if (id->type == ValueType::kNumber && IsUnsignedInteger(id->text))
    return std::string_view(id->text);
  return Status::InvalidField(field, "must be a string or a non-negative integer");
}

Result<std::string> IdFromJson(const rapidjson::Value& v, std::string_view field) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  return Status::InvalidField(field, "must be a string or a non-negative integer");
}

void AppendItem(const Result<std::string>& item, std::string& out) {
  if (item.ok()) {
    out += "{\"ent\":";
    out += *item;
    out += '}';
  } else {
    AppendJson(ErrorMessage(item.status()), out);
  }
}

Message EntReply(std::string ent) {
  Message reply;
  reply.SetObjectJson("ent", std::move(ent));
  return reply;
}

Result<Message> ItemsReply(const std::vector<Result<std::string>>& items) {
  std::string array = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) array += ',';
    AppendItem(items[i], array);
  }
  array += ']';
  Message reply;
  reply.SetArrayJson("items", array);
  return reply;
}

Status PrefixError(const Status& s, std::string_view prefix) {
  return Status(s.code(), fmt::format("{}: {}", prefix, s.message()), s.details_json());
}

Result<Query> ParseQuery(const Message& m, const std::string& kind) {
  Query query;
  query.kind = kind;
  const Value* q = m.Find("q");
  if (q == nullptr) return query;
  if (q->type != ValueType::kObject) return Status::InvalidField("q", "must be an object");
  auto doc = ParseJson(q->text, "q");
  if (!doc.ok()) return doc.status();
  for (const auto& member : doc->GetObject()) {
    std::string name(member.name.GetString(), member.name.GetStringLength());
    const rapidjson::Value& v = member.value;
    std::string field = "q." + name;
    if (!name.empty() && name.back() == '$') {
      if (name == "sort$") {
        if (!v.IsObject() || v.MemberCount() != 1) {
          return Status::InvalidField(
              field, "must be an object with one field: {\"field\":1|-1|\"asc\"|\"desc\"}");
        }
        const auto& s = *v.MemberBegin();
        query.sort_field.assign(s.name.GetString(), s.name.GetStringLength());
        if (s.value.IsInt() && (s.value.GetInt() == 1 || s.value.GetInt() == -1)) {
          query.sort_direction = s.value.GetInt() == 1 ? "asc" : "desc";
        } else if (s.value.IsString() && (std::string_view(s.value.GetString()) == "asc" ||
                                          std::string_view(s.value.GetString()) == "desc")) {
          query.sort_direction = s.value.GetString();
        } else {
          return Status::InvalidField(field, "direction must be 1, -1, \"asc\" or \"desc\"");
        }
      } else if (name == "limit$" || name == "skip$") {
        if (!v.IsInt64() || v.GetInt64() < 0)
          return Status::InvalidField(field, "must be a non-negative integer");
        if (name == "limit$") {
          query.limit = v.GetInt64();
        } else {
          query.skip = v.GetInt64();
        }
      } else if (name == "fields$") {
        if (!v.IsArray()) return Status::InvalidField(field, "must be an array of field names");
        for (const auto& f : v.GetArray()) {
          if (!f.IsString()) return Status::InvalidField(field, "must be an array of field names");
          query.fields.emplace_back(f.GetString(), f.GetStringLength());
        }
      } else if (name == "cursor$") {
        if (!v.IsString())
          return Status::InvalidField(field, "must be the string cursor of an earlier page");
        query.cursor.assign(v.GetString(), v.GetStringLength());
      } else {
        return Status::InvalidField(
            field, "unknown query operator (known: sort$, limit$, skip$, fields$, cursor$)");
      }
      continue;
    }
    if (v.IsObject()) {
      if (v.MemberCount() > 0 && v.MemberBegin()->name.GetStringLength() > 0 &&
          v.MemberBegin()->name.GetString()[0] == '$') {
        return Status::InvalidField(
            field, fmt::format("unknown query operator '{}' (only equality is supported)",
                               v.MemberBegin()->name.GetString()));
      }
      return Status::InvalidField(field, "must be a scalar (equality only)");
    }
    if (v.IsArray()) return Status::InvalidField(field, "must be a scalar (equality only)");
    query.filters.push_back(Filter{std::move(name), ToJsonText(v)});
  }
  return query;
}

class StoreService final : public Handler {
 public:
  StoreService(std::shared_ptr<EntityStore> store, StoreServiceOptions options)
      : store_(std::move(store)), options_(std::move(options)) {
    Scheduler& scheduler =
        options_.scheduler != nullptr ? *options_.scheduler : Scheduler::Shared();
    ChangeWaits::Run run = options_.executor;
    if (!run) {
      run = [scheduler = &scheduler](std::function<void()> work) {
        scheduler->After(std::chrono::milliseconds(0), std::move(work));
      };
    }
    waits_ = std::make_shared<ChangeWaits>(store_->feed(), scheduler, std::move(run));
  }
  // Waiting readers are answered while the store is still open.
  ~StoreService() override { waits_->Close(); }

  void Handle(Message message, const Context& context, ReplyFn reply) override {
    const bool changes = message.GetString("store") == std::optional<std::string_view>("changes");
    // A long-poll never waits past the message's deadline.
    int64_t time_left_ms = -1;
    if (const int64_t deadline = context.origin().deadline;
        changes && deadline > 0 && context.bus()) {
      time_left_ms = std::max<int64_t>(0, deadline - context.bus()->clock().NowMs());
    }
    auto serve = [this, changes, time_left_ms](const Message& m, ReplyFn& r) {
      if (changes) return ServeChanges(m, time_left_ms, std::move(r));
      r(Serve(m));
    };
    // Served in place (no executor), the message and the reply are not moved into a task first.
    if (!options_.executor) return serve(message, reply);
    options_.executor([serve, message = std::move(message), reply = std::move(reply)]() mutable {
      serve(message, reply);
    });
  }

 private:
  Result<Message> Serve(const Message& m) {
    auto op = m.GetString("store");
    if (!op)
      return Status::InvalidField(
          "store", "must be one of save, load, list, remove, changes, replicate, replication");
    if (*op == "save") return Save(m);
    if (*op == "load") return Load(m);
    if (*op == "list") return List(m);
    if (*op == "remove") return Remove(m);
    if (*op == "claim") return Claim(m);
    if (*op == "replicate") return ServeReplicate(*store_, m);
    if (*op == "replication") return ServeReplicationState(*store_, m);
    return Status::InvalidField(
        "store",
        fmt::format(
            "unknown operation '{}' (save, load, list, remove, changes, replicate, replication)",
            *op));
  }

  // store:claim (a shard router's, docs/sharding.md): records the idempotency key's use for
  // `request` without writing an entity.
  Result<Message> Claim(const Message& m) {
    auto request = m.GetString("request");
    if (!request) return Status::InvalidField("request", "must be a string");
    if (m.meta().idempotency_key.empty())
      return Status::InvalidField("meta$.idempotency_key", "is required by store:claim");
    if (Status s = store_->ClaimKey(m.meta().idempotency_key, *request); !s.ok()) return s;
    Message reply;
    reply.SetBool("claimed", true);
    return reply;
  }

  // Options shared by single and bulk saves.
  Status SaveOptions(const Message& m, SaveRequest& request) {
    if (const Value* v = m.Find("version")) {
      auto version = m.GetUint("version");
      if (!version || v->type != ValueType::kNumber)
        return Status::InvalidField("version", "must be a non-negative integer");
      request.expected_version = *version;
    }
    if (const Value* v = m.Find("insert_only")) {
      if (v->type != ValueType::kBool)
        return Status::InvalidField("insert_only", "must be a boolean");
      request.insert_only = *m.GetBool("insert_only");
    }
    if (const Value* v = m.Find("observed_version")) {
      auto version = m.GetUint("observed_version");
      if (!version || v->type != ValueType::kNumber)
        return Status::InvalidField("observed_version", "must be a non-negative integer");
      request.observed_version = *version;
    }
    if (m.Has("move")) {
      // The steps of a cross-shard move, which a shard router sends (docs/sharding.md).
      auto step = m.GetString("move");
      auto at = m.GetUint("at_version");
      if (step == std::optional<std::string_view>("mark")) {
        request.move = SaveRequest::MoveStep::kMark;
      } else if (step == std::optional<std::string_view>("insert") && at) {
        request.move = SaveRequest::MoveStep::kInsert;
        request.at_version = *at;
      } else {
        return Status::InvalidField(
            "move", "must be \"mark\", or \"insert\" with at_version (a shard router's steps)");
      }
    }
    if (const Value* v = m.Find("ttl")) {
      auto ttl = m.GetInt("ttl");
      if (!ttl || *ttl <= 0 || v->type != ValueType::kNumber)
        return Status::InvalidField("ttl", "must be a positive integer (seconds)");
      request.ttl_seconds = *ttl;
    }
    return Status::Ok();
  }

  Result<Message> Save(const Message& m) {
    auto kind = RequireKind(m);
    if (!kind.ok()) return kind.status();
    SaveRequest base;
    base.kind = *kind;
    if (Status s = SaveOptions(m, base); !s.ok()) return s;

    if (const Value* ents = m.Find("ents")) {
      if (m.Has("ent")) return Status::InvalidField("ents", "give either ent or ents, not both");
      if (ents->type != ValueType::kArray)
        return Status::InvalidField("ents", "must be an array of objects");
      auto doc = ParseJson(ents->text, "ents");
      if (!doc.ok()) return doc.status();
      if (doc->Size() > options_.max_batch_items) {
        return Status::InvalidField("ents", fmt::format("has {} items; the limit is {}",
                                                        doc->Size(), options_.max_batch_items));
      }
      std::vector<SaveRequest> requests;
      requests.reserve(doc->Size());
      for (const auto& item : doc->GetArray()) {
        SaveRequest request = base;
        request.ent = ToJsonText(item);
        requests.push_back(std::move(request));
      }
      const std::string& key = m.meta().idempotency_key;
      auto results = store_->SaveBatch(requests, key);
      // A bad or reused key fails every item alike: it is the request's error, not an item's.
      if (!results.empty() && !results.front().ok() &&
          internal::IsIdempotencyKeyError(results.front().status())) {
        return results.front().status();
      }
      for (size_t i = 0; i < results.size(); ++i) {
        if (!results[i].ok())
          results[i] = PrefixError(results[i].status(), fmt::format("ents[{}]", i));
      }
      return ItemsReply(results);
    }

    const Value* ent = m.Find("ent");
    if (ent == nullptr) return Status::InvalidField("ent", "is required (an object)");
    if (ent->type != ValueType::kObject) return Status::InvalidField("ent", "must be an object");
    base.ent = ent->text;
    if (const Value* id = m.Find("id")) {
      auto text = IdFromValue(id, "id");
      if (!text.ok()) return text.status();
      base.id = *text;
    }
    auto saved = store_->Save(base, m.meta().idempotency_key);
    if (!saved.ok()) return std::move(saved).status();
    return EntReply(std::move(saved).value());
  }

  Result<Message> Load(const Message& m) {
    auto kind = RequireKind(m);
    if (!kind.ok()) return kind.status();
    if (const Value* ids = m.Find("ids")) {
      if (ids->type != ValueType::kArray)
        return Status::InvalidField("ids", "must be an array of ids");
      auto doc = ParseJson(ids->text, "ids");
      if (!doc.ok()) return doc.status();
      if (doc->Size() > options_.max_batch_items) {
        return Status::InvalidField("ids", fmt::format("has {} items; the limit is {}", doc->Size(),
                                                       options_.max_batch_items));
      }
      std::vector<Result<std::string>> results;
      std::vector<EntityRef> refs;
      std::vector<size_t> positions;
      size_t i = 0;
      for (const auto& item : doc->GetArray()) {
        auto id = IdFromJson(item, fmt::format("ids[{}]", i));
        if (id.ok()) {
          refs.push_back(EntityRef{*kind, std::move(id).value()});
          positions.push_back(results.size());
          results.emplace_back(std::string());
        } else {
          results.emplace_back(std::move(id).status());
        }
        ++i;
      }
      auto loaded = store_->LoadBatch(refs);
      for (size_t j = 0; j < loaded.size(); ++j) results[positions[j]] = std::move(loaded[j]);
      return ItemsReply(results);
    }
    auto id = IdFromValue(m.Find("id"), "id");
    if (!id.ok()) return id.status();
    // The reply takes the entity straight from where the engine holds it: one copy.
    Message reply;
    Status loaded = store_->LoadInPlace(*kind, *id, [&reply](const EntityView& row) {
      reply.Reserve(2, std::size("ent") + row.value.size() + std::size("expires_at") + 20);
      reply.SetObjectJson("ent", row.value);
      // When it expires, for whoever keeps a copy (a cache).
      if (row.expires_at_ms > 0) reply.SetInt("expires_at", row.expires_at_ms);
    });
    if (!loaded.ok()) return loaded;
    return reply;
  }

  // The bound on a reply's items: max_reply_bytes less room for the rest (cursor, count, meta$).
  size_t MaxPageBytes() const {
    const size_t envelope = 4096;
    const size_t max = options_.max_reply_bytes;
    return max > 2 * envelope ? max - envelope : max;
  }

  Result<Message> List(const Message& m) {
    auto kind = RequireKind(m);
    if (!kind.ok()) return kind.status();
    auto query = ParseQuery(m, *kind);
    if (!query.ok()) return query.status();
    if (!query->limit) query->limit = kDefaultListLimit;
    query->max_page_bytes = MaxPageBytes();
    auto page = store_->List(*query);
    if (!page.ok()) return std::move(page).status();
    std::string items = "[";
    for (size_t i = 0; i < page->items.size(); ++i) {
      if (i) items += ',';
      items += page->items[i];
    }
    items += ']';
    Message reply;
    reply.SetArrayJson("items", items);
    if (!page->next_cursor.empty()) reply.SetString("cursor", page->next_cursor);
    return reply;
  }

  Result<Message> Remove(const Message& m) {
    auto kind = RequireKind(m);
    if (!kind.ok()) return kind.status();
    if (m.Has("id")) {
      auto id = IdFromValue(m.Find("id"), "id");
      if (!id.ok()) return id.status();
      if (m.Has("move")) return ClearMoveMarker(m, *kind, *id);
      auto removed = store_->Remove(*kind, *id, m.meta().idempotency_key);
      if (!removed.ok()) return std::move(removed).status();
      return EntReply(std::move(removed).value());
    }
    const Value* all = m.Find("all");
    if (all == nullptr || all->type != ValueType::kBool || all->text != "true") {
      return Status::InvalidField("all", "removing by query needs all:true (or give an id)");
    }
    auto query = ParseQuery(m, *kind);
    if (!query.ok()) return query.status();
    query->max_page_bytes = MaxPageBytes();  // the removed entities are the reply: nothing removed
    if (m.Has("max_reply_bytes")) {
      // A shard router's share of its own bound: the shards' replies together must fit it.
      auto share = m.GetUint("max_reply_bytes");
      if (!share || *share == 0)
        return Status::InvalidField("max_reply_bytes", "must be a positive integer");
      query->max_page_bytes = std::min<size_t>(query->max_page_bytes, *share);
    }
    auto removed = store_->RemoveWhere(*query, m.meta().idempotency_key);
    if (!removed.ok()) return std::move(removed).status();
    std::string items = "[";
    for (size_t i = 0; i < removed->size(); ++i) {
      if (i) items += ',';
      items += (*removed)[i];
    }
    items += ']';
    Message reply;
    reply.SetArrayJson("items", items);
    reply.SetUint("count", removed->size());
    return reply;
  }

  // Step c of a cross-shard move: {"cleared":true} if the marker at `version` was removed.
  Result<Message> ClearMoveMarker(const Message& m, std::string_view kind, std::string_view id) {
    auto version = m.GetUint("version");
    if (m.GetString("move") != std::optional<std::string_view>("clear") || !version)
      return Status::InvalidField("move", "a remove takes move:\"clear\" with the version");
    auto cleared = store_->ClearMoveMarker(kind, id, *version);
    if (!cleared.ok()) return std::move(cleared).status();
    Message reply;
    reply.SetBool("cleared", *cleared);
    return reply;
  }

  struct ChangesRequest {
    uint64_t from = 0;
    size_t limit = 1000;
    int64_t wait_ms = 0;
  };

  Result<ChangesRequest> ParseChanges(const Message& m, int64_t time_left_ms) {
    ChangesRequest request;
    // Without `from`, reading starts at the oldest retained record (so `limit:1` also tells
    // `last`).
    request.from = store_->feed().FirstRetainedSequence();
    if (m.Has("from")) {
      auto v = m.GetUint("from");
      if (!v || *v == 0)
        return Status::InvalidField("from", "must be a positive integer (a sequence number)");
      request.from = *v;
    }
    if (m.Has("limit")) {
      auto v = m.GetUint("limit");
      if (!v || *v == 0) return Status::InvalidField("limit", "must be a positive integer");
      request.limit = std::min<size_t>(*v, options_.max_changes_per_read);
    }
    if (const Value* w = m.Find("wait_ms")) {
      auto v = m.GetInt("wait_ms");
      if (!v || *v < 0 || w->type != ValueType::kNumber)
        return Status::InvalidField("wait_ms", "must be a non-negative integer (milliseconds)");
      if (*v > options_.max_wait_ms) {
        return Status::InvalidField("wait_ms",
                                    fmt::format("must be at most {}", options_.max_wait_ms));
      }
      request.wait_ms = time_left_ms >= 0 ? std::min(*v, time_left_ms) : *v;
    }
    return request;
  }

  // Answers at once when there are changes (or no wait); else parks the read in waits_.
  void ServeChanges(const Message& m, int64_t time_left_ms, ReplyFn reply) {
    auto request = ParseChanges(m, time_left_ms);
    if (!request.ok()) return reply(std::move(request).status());
    auto records = store_->feed().ReadChanges(request->from, request->limit);
    if (!records.ok() || !records->empty() || request->wait_ms == 0) {
      return reply(ChangesReply(*store_, std::move(records), MaxPageBytes()));
    }
    waits_->Wait(request->from, std::chrono::milliseconds(request->wait_ms),
                 [store = store_, request = *request, reply = std::move(reply),
                  max_bytes = MaxPageBytes()]() mutable {
                   Result<Message> answer = ChangesReply(
                       *store, store->feed().ReadChanges(request.from, request.limit), max_bytes);
                   // This runs on the waits' thread: the store is let go before the reply, so the
                   // reader that gets the reply may close the store at once (it is never closed on
                   // this thread, racing the reader's shutdown).
                   store.reset();
                   ReplyFn send = std::move(reply);
                   send(std::move(answer));
                 });
  }

  // Records past `max_bytes` are left for the next read (the reader goes on from the last
  // record's seq + 1), but the first is always sent.
  static Result<Message> ChangesReply(EntityStore& store, Result<std::vector<ChangeRecord>> records,
                                      size_t max_bytes) {
    if (!records.ok()) return std::move(records).status();
    std::string changes = "[";
    for (size_t i = 0; i < records->size(); ++i) {
      const ChangeRecord& r = (*records)[i];
      if (i > 0 && changes.size() + r.value.size() + r.id.size() + r.kind.size() + 128 > max_bytes)
        break;
      if (i) changes += ',';
      fmt::format_to(std::back_inserter(changes),
                     "{{\"seq\":{},\"ksid\":\"{:016x}\",\"kind\":", r.sequence, r.ksid);
      AppendJsonString(r.kind, changes);
      changes += ",\"id\":";
      AppendJsonString(r.id, changes);
      fmt::format_to(std::back_inserter(changes), ",\"op\":\"{}\",\"version\":{}",
                     ChangeOpName(r.op), r.version);
      if (!r.value.empty()) {
        changes += ",\"ent\":";
        changes += r.value;
      }
      changes += '}';
    }
    changes += ']';
    Message reply;
    reply.SetArrayJson("changes", changes);
    reply.SetUint("last", store.feed().LastSequence());
    return reply;
  }

  std::shared_ptr<EntityStore> store_;
  StoreServiceOptions options_;
  std::shared_ptr<internal::ChangeWaits> waits_;  // store:changes long-polls
};

}  // namespace

Result<Query> QueryFromMessage(const Message& message) {
  auto kind = RequireKind(message);
  if (!kind.ok()) return kind.status();
  return ParseQuery(message, *kind);
}

std::shared_ptr<Handler> MakeStoreService(std::shared_ptr<EntityStore> store,
                                          StoreServiceOptions options) {
  return std::make_shared<StoreService>(std::move(store), std::move(options));
}

}  // namespace shardkit::store
