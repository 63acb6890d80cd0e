#include "cross_shard_move.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <array>
#include <map>
#include <memory>

#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/store/entity_store.h>

#include "shard_key.h"

namespace shardkit::shard::internal {
namespace {

constexpr const char* kMoving = "moving$";

// The details' "field" of an error answer ("" if none).
std::string FieldOf(const Status& status) {
  rapidjson::Document d;
  d.Parse(status.details_json().data(), status.details_json().size());
  if (!d.IsObject() || !d.HasMember("field") || !d["field"].IsString()) return {};
  return d["field"].GetString();
}

uint64_t DetailsVersion(const Status& status) {
  rapidjson::Document d;
  d.Parse(status.details_json().data(), status.details_json().size());
  return d.IsObject() && d.HasMember("version") && d["version"].IsUint64()
             ? d["version"].GetUint64()
             : 0;
}

// The stored version of a loaded entity's text (0 if none).
uint64_t VersionOf(std::string_view ent_text) {
  rapidjson::Document d;
  d.Parse(ent_text.data(), ent_text.size());
  return d.IsObject() && d.HasMember("version") && d["version"].IsUint64()
             ? d["version"].GetUint64()
             : 0;
}

Message Request(std::string_view op, std::string_view kind, std::string_view id) {
  Message m;
  m.SetString("store", op).SetString("kind", kind).SetString("id", id);
  return m;
}

void CompleteAt(RouterSteps steps, const std::string& shard, const std::string& kind,
                const std::string& id, std::function<void()> then, int depth = 0);

// The answer for a move that is decided (its marker committed) but could not be finished now.
Status Unfinished(const MoveMarker& marker, const Status& why) {
  return Status::Unavailable(
      fmt::format("the move of {} \"{}\" to shard {} (version {}) is recorded but not finished "
                  "({}); the next read or write of it finishes it",
                  marker.kind, marker.id, marker.to, marker.version, why.ToString()),
      JsonObject().Add("shard", marker.to).str());
}

// Steps b and c of a move. `done` gets step b's answer, the moved entity as stored (or a load of
// it when an earlier completion inserted it), or why the move could not be finished now.
void CompleteMove(RouterSteps steps, MoveMarker marker, ReplyFn done, int depth = 0) {
  Message insert = Request("save", marker.kind, marker.id);
  if (!marker.id_param) insert.Remove("id");
  insert.SetObjectJson("ent", marker.ent).SetString("move", "insert");
  insert.SetUint("at_version", marker.version);
  if (marker.id_param) insert.SetString("id", *marker.id_param);
  if (marker.expected) insert.SetUint("version", *marker.expected);
  if (marker.ttl) insert.SetInt("ttl", *marker.ttl);
  // A receipt makes step b idempotent for every completer, also after the entity moved on: the
  // client's key (a replay of the client's save meets it), else one derived from the move.
  insert.meta().idempotency_key =
      marker.key.empty() ? KeyedId(marker.kind, "move:" + marker.id, marker.version) : marker.key;
  steps.send(marker.to, insert, [steps, marker, done, depth](Result<Message> b) mutable {
    if (!b.ok() && !marker.key.empty() && FieldOf(b.status()) == "meta$.idempotency_key") {
      marker.key.clear();  // the client's key was used before for another request
      return CompleteMove(steps, std::move(marker), std::move(done), depth);
    }
    if (!b.ok() && FieldOf(b.status()) == kMoving && depth < 2) {
      // The target still holds the marker of the move that brought the entity here (its insert
      // is done, its clear is not): finish that one first.
      return CompleteAt(steps, marker.to, marker.kind, marker.id, [=]() mutable {
        CompleteMove(steps, std::move(marker), std::move(done), depth + 1);
      });
    }
    const bool inserted_before = !b.ok() && b.status().code() == Code::kConflict &&
                                 FieldOf(b.status()) == "id" &&
                                 DetailsVersion(b.status()) >= marker.version;
    if (!b.ok() && !inserted_before) return done(Unfinished(marker, b.status()));
    Message clear = Request("remove", marker.kind, marker.id);
    clear.SetString("move", "clear").SetUint("version", marker.version);
    steps.send(marker.from, clear, [steps, marker, b, done](Result<Message>) {
      // A failed clear leaves the marker for the next reader to clear; the entity stands on `to`.
      if (b.ok()) return done(b);
      steps.send(
          marker.to, Request("load", marker.kind, marker.id), [marker, done](Result<Message> now) {
            auto ent = now.ok() ? now->GetObjectJson("ent") : std::nullopt;
            if (ent && !MarkerOf(marker.kind, marker.to, *ent)) return done(now);
            done(Unfinished(marker, now.ok() ? Status::Conflict("moving on") : now.status()));
          });
    });
  });
}

// The tombstone in an ok answer ({"ent":…}) of `shard`, if it is one.
std::optional<MoveMarker> TombstoneOf(const Result<Message>& a, std::string_view kind,
                                      std::string_view shard) {
  auto ent = a.ok() ? a->GetObjectJson("ent") : std::nullopt;
  auto marker = ent ? MarkerOf(kind, shard, *ent) : std::nullopt;
  return marker && marker->done ? marker : std::nullopt;
}

// Loads the id from `shard` and completes the move of a marker found there; then `then`.
void CompleteAt(RouterSteps steps, const std::string& shard, const std::string& kind,
                const std::string& id, std::function<void()> then, int depth) {
  steps.send(shard, Request("load", kind, id),
             [steps, shard, kind, then, depth](Result<Message> r) {
               auto ent = r.ok() ? r->GetObjectJson("ent") : std::nullopt;
               auto marker = ent ? MarkerOf(kind, shard, *ent) : std::nullopt;
               if (!marker || marker->done) return then();
               CompleteMove(
                   steps, std::move(*marker), [then](Result<Message>) { then(); }, depth);
             });
}

// Step a: the entity `current` (at `version` on shard `from`) becomes a marker of its move to
// `target`, then steps b and c follow; the client gets step b's answer.
void StartMove(RouterSteps steps, const Message& save, const std::string& from,
               std::string_view current, uint64_t version, std::string target, ReplyFn reply) {
  MoveMarker marker;
  marker.kind = std::string(*save.GetString("kind"));
  marker.id = *SaveId(save);
  if (auto expected = save.GetUint("version"); expected && *expected != version) {
    return reply(Status::Conflict(fmt::format("version: expected {}, found {}", *expected, version),
                                  JsonObject()
                                      .Add("field", "version")
                                      .Add("expected", *expected)
                                      .Add("actual", version)
                                      .str()));
  }
  if (save.GetBool("insert_only") == true) {
    return reply(Status::Conflict(
        fmt::format("id: {} \"{}\" already exists (insert only)", marker.kind, marker.id),
        JsonObject().Add("field", "id").Add("version", version).str()));
  }
  marker.from = from;
  marker.to = std::move(target);
  marker.version = version + 1;
  marker.ent = std::string(*save.GetObjectJson("ent"));
  if (const Value* id = save.Find("id")) marker.id_param = id->text;
  marker.expected = save.GetUint("version");
  marker.ttl = save.GetInt("ttl");
  marker.key = save.meta().idempotency_key;
  JsonObject moving;
  moving.Add("to", marker.to).Add("ent", marker.ent).Add("key", marker.key);
  if (marker.id_param) moving.Add("id", *marker.id_param);
  if (marker.expected) moving.Add("expected", *marker.expected);
  if (marker.ttl) moving.Add("ttl", *marker.ttl);
  // The marker keeps the old entity's fields (so its shard key stays on `from`) plus moving$.
  auto doc = ParseJson(current, "ent");
  if (!doc.ok()) return reply(doc.status());
  doc->RemoveMember(kMoving);
  std::string text = ToJsonText(*doc);
  text.insert(text.size() - 1,
              (doc->MemberCount() ? ",\"" : "\"") + std::string(kMoving) + "\":" + moving.str());
  Message mark = Request("save", marker.kind, marker.id);
  mark.SetObjectJson("ent", text).SetString("move", "mark").SetUint("version", version);
  steps.send(from, mark, [steps, marker, reply](Result<Message> a) {
    if (a.ok()) return CompleteMove(steps, marker, reply);
    // The entity changed since it was found (another save, another move), or the shard left
    // the map meanwhile: route again.
    if (a.status().code() == Code::kConflict || a.status().code() == Code::kWrongShard)
      return steps.retry(reply);
    reply(ShardError(marker.from, a.status()));
  });
}

}  // namespace

std::optional<MoveMarker> MarkerOf(std::string_view kind, std::string_view shard,
                                   std::string_view ent_text) {
  if (ent_text.find("\"moving$\"") == std::string_view::npos) return std::nullopt;
  rapidjson::Document d;
  d.Parse(ent_text.data(), ent_text.size());
  if (!d.IsObject() || !d.HasMember(kMoving) || !d[kMoving].IsObject()) return std::nullopt;
  const rapidjson::Value& m = d[kMoving];
  if (!d.HasMember("id") || !d["id"].IsString() || !m.HasMember("to") || !m["to"].IsString() ||
      !m.HasMember("ent") || !m["ent"].IsString())
    return std::nullopt;
  MoveMarker marker;
  marker.kind = std::string(kind);
  marker.id = d["id"].GetString();
  marker.from = std::string(shard);
  marker.to = m["to"].GetString();
  marker.version = VersionOf(ent_text);
  marker.ent = m["ent"].GetString();
  if (m.HasMember("id") && m["id"].IsString()) marker.id_param = m["id"].GetString();
  if (m.HasMember("expected") && m["expected"].IsUint64())
    marker.expected = m["expected"].GetUint64();
  if (m.HasMember("ttl") && m["ttl"].IsInt64()) marker.ttl = m["ttl"].GetInt64();
  if (m.HasMember("key") && m["key"].IsString()) marker.key = m["key"].GetString();
  marker.done = m.HasMember("done") && m["done"].IsTrue();
  return marker;
}

bool MeetsMarker(const Result<Message>& answer) {
  if (!answer.ok())
    return answer.status().code() == Code::kConflict && FieldOf(answer.status()) == kMoving;
  auto ent = answer->GetObjectJson("ent");
  if (!ent || ent->find("\"moving$\"") == std::string_view::npos) return false;
  auto marker = MarkerOf("", "", *ent);
  return marker && !marker->done;
}

void SaveByField(RouterSteps steps, Message save, std::string target, ReplyFn reply) {
  std::string kind(*save.GetString("kind"));
  std::string id = *SaveId(save);
  auto ask = steps.ask_all;
  ask(Request("load", kind, id),
      [steps, save, target, kind, id, reply](std::vector<std::string> shards,
                                             RouterSteps::Answers answers) mutable {
        std::optional<size_t> found;
        uint64_t found_version = 0, target_tombstone = 0;
        std::string tombstones;
        for (size_t s = 0; s < answers.size(); ++s) {
          if (!answers[s]) continue;
          const Result<Message>& a = *answers[s];
          if (auto tombstone = TombstoneOf(a, kind, shards[s])) {
            tombstones += fmt::format("{}@{};", shards[s], tombstone->version);
            if (shards[s] == target) target_tombstone = tombstone->version;
            continue;
          }
          if (!a.ok()) {
            // Unsure where the entity is: refuse rather than risk a second copy.
            if (a.status().code() != Code::kNotFound)
              return reply(ShardError(shards[s], a.status()));
            continue;
          }
          std::string ent(a->GetObjectJson("ent").value_or("{}"));
          if (auto marker = MarkerOf(kind, shards[s], ent)) {
            auto retry = steps.retry;
            return CompleteMove(steps, std::move(*marker),
                                [retry, reply](Result<Message>) { retry(reply); });
          }
          if (!found || VersionOf(ent) > found_version) {
            found = s;
            found_version = VersionOf(ent);
          }
        }
        if (found && shards[*found] != target) {
          std::string ent(*(*answers[*found])->GetObjectJson("ent"));
          return StartMove(steps, save, shards[*found], ent, found_version, target, reply);
        }
        // Found only as tombstones: perhaps moving between two shards' reads (see AnswerFromAll).
        if (!found && !tombstones.empty() && tombstones != steps.seen)
          return steps.recheck(tombstones, reply);
        // Where the target holds a tombstone, the save replaces it if it is still that one.
        save.SetUint("observed_version", found ? found_version : target_tombstone);
        steps.send(target, save, [steps, reply](Result<Message> r) {
          // The entity changed, moved or began moving since it was found, or the target left
          // the map meanwhile (a split cut over): route again.
          if (!r.ok() &&
              ((r.status().code() == Code::kConflict &&
                (FieldOf(r.status()) == "observed_version" || FieldOf(r.status()) == kMoving)) ||
               r.status().code() == Code::kWrongShard))
            return steps.retry(reply);
          reply(std::move(r));
        });
      });
}

void AnswerFromAll(const RouterSteps& steps, const std::vector<std::string>& shards,
                   RouterSteps::Answers answers, const std::string& kind, const std::string& id,
                   bool answer_moved, ReplyFn reply) {
  std::optional<size_t> best;
  std::optional<Status> not_found;
  std::string tombstones;
  for (size_t s = 0; s < answers.size(); ++s) {
    if (!answers[s]) continue;
    Result<Message>& a = *answers[s];
    if (auto tombstone = TombstoneOf(a, kind, shards[s])) {
      tombstones += fmt::format("{}@{};", shards[s], tombstone->version);
      continue;
    }
    if (MeetsMarker(a)) {
      auto retry = steps.retry;
      auto ent = a.ok() ? a->GetObjectJson("ent") : std::nullopt;
      auto marker = ent && answer_moved ? MarkerOf(kind, shards[s], *ent) : std::nullopt;
      if (!marker) return CompleteAt(steps, shards[s], kind, id, [retry, reply] { retry(reply); });
      // A load answers the moved entity: from step a on, it is the entity's value. (Routing
      // again could meet the next move's marker, and the next, while writers keep moving it.)
      return CompleteMove(steps, std::move(*marker), [retry, reply](Result<Message> b) {
        if (b.ok()) return reply(std::move(b));
        retry(reply);
      });
    }
    if (a.ok()) {
      auto version = [&](size_t i) {
        return VersionOf((*answers[i])->GetObjectJson("ent").value_or("{}"));
      };
      if (!best || version(s) > version(*best)) best = s;
    } else if (a.status().code() == Code::kNotFound) {
      not_found = a.status();
    } else {
      return reply(ShardError(shards[s], a.status()));
    }
  }
  if (best) return reply(std::move(*answers[*best]));
  // Each shard answered at its own moment: a move completing between two of them hides the
  // entity from both, but leaves a tombstone on its old shard. Asked again, after those reads,
  // the new shard shows it, unless it is gone; the same tombstones twice in a row say it is gone.
  if (!tombstones.empty() && tombstones != steps.seen) return steps.recheck(tombstones, reply);
  reply(not_found ? *not_found : Status::NotFound("no " + kind + " with id \"" + id + "\""));
}

void Settle(RouterSteps steps, const std::string& shard, std::string kind, std::string id,
            Result<Message> answer, ReplyFn reply) {
  if (TombstoneOf(answer, kind, shard))  // the entity moved away from this key
    return reply(Status::NotFound("no " + kind + " with id \"" + id + "\""));
  if (!MeetsMarker(answer)) return reply(std::move(answer));
  auto retry = steps.retry;
  CompleteAt(steps, shard, kind, id, [retry, reply] { retry(reply); });
}

void CompleteAll(RouterSteps steps, std::vector<MoveMarker> markers, std::function<void()> then) {
  if (markers.empty()) return then();
  MoveMarker last = std::move(markers.back());
  markers.pop_back();
  CompleteMove(steps, std::move(last),
               [steps, markers = std::move(markers), then](Result<Message>) mutable {
                 CompleteAll(std::move(steps), std::move(markers), std::move(then));
               });
}

void RefuseBulkMoves(RouterSteps steps, const std::string& kind, const std::string& key_field,
                     std::shared_ptr<BulkPlan> plan,
                     std::shared_ptr<std::vector<std::string>> items,
                     std::function<void(std::shared_ptr<BulkPlan>)> send, ReplyFn reply) {
  std::vector<std::pair<size_t, size_t>> asked;  // (shard index, index in plan[shard])
  std::string ids = "[";
  for (size_t s = 0; s < plan->size(); ++s) {
    for (size_t j = 0; j < (*plan)[s].size(); ++j) {
      if (!(*plan)[s][j].id) continue;
      ids += asked.empty() ? "" : ",";
      AppendJsonString(*(*plan)[s][j].id, ids);
      asked.emplace_back(s, j);
    }
  }
  Message probe;
  probe.SetString("store", "load").SetString("kind", kind).SetArrayJson("ids", ids + "]");
  auto ask = steps.ask_all;
  ask(probe, [=](std::vector<std::string> shards, RouterSteps::Answers answers) {
    std::vector<std::optional<Status>> refused(asked.size());
    for (size_t s = 0; s < answers.size(); ++s) {
      const Result<Message>& a = *answers[s];
      if (!a.ok()) return reply(ShardError(shards[s], a.status()));
      rapidjson::Document found;
      auto text = a->GetArrayJson("items").value_or("[]");
      found.Parse(text.data(), text.size());
      for (size_t k = 0; k < asked.size() && found.IsArray() && k < found.Size(); ++k) {
        auto [home, j] = asked[k];
        const auto& item = found[static_cast<rapidjson::SizeType>(k)];
        // A tombstone is not the entity: it moved away from that shard.
        if (home == s || !item.HasMember("ent") ||
            TombstoneOf(Message().SetObjectJson("ent", ToJsonText(item["ent"])), kind, shards[s]))
          continue;
        const BulkItem& planned = (*plan)[home][j];
        Status e = CrossShardMove(key_field, kind, *planned.id, shards[s], shards[home]);
        refused[k] = Status(e.code(), fmt::format("ents[{}]: {}", planned.position, e.message()),
                            e.details_json());
      }
    }
    auto kept = std::make_shared<BulkPlan>(plan->size());
    for (size_t k = 0, s = 0; s < plan->size(); ++s) {
      for (size_t j = 0; j < (*plan)[s].size(); ++j) {
        BulkItem item = (*plan)[s][j];
        bool checked = k < asked.size() && asked[k] == std::make_pair(s, j);
        if (checked && refused[k]) {
          (*items)[item.position] = ToJson(ErrorMessage(*refused[k]));
        } else {
          (*kept)[s].push_back(std::move(item));
        }
        k += checked;
      }
    }
    send(std::move(kept));
  });
}

Status RefuseMoveFields(const Message& message) {
  // One pass over the properties: this runs for every message a shard router takes.
  constexpr std::array<std::string_view, 3> kRouterFields = {"move", "at_version",
                                                             "observed_version"};
  std::array<bool, 3> present{};
  const Value* ent = nullptr;
  bool to_shard = false;
  for (const Property& p : message.properties()) {
    for (size_t i = 0; i < kRouterFields.size(); ++i) present[i] |= p.name == kRouterFields[i];
    to_shard |= p.name == "shard";
    if (p.name == "ent") ent = &p.value;
  }
  for (size_t i = 0; i < kRouterFields.size() && !to_shard; ++i) {
    if (present[i]) return Status::InvalidField(kRouterFields[i], "is set by a shard router only");
  }
  if (ent == nullptr || ent->type != ValueType::kObject ||
      ent->text.find("\"moving$\"") == std::string_view::npos)
    return Status::Ok();
  auto doc = ParseJson(ent->text, "ent");
  if (doc.ok() && doc->IsObject() && doc->HasMember(kMoving))
    return Status::InvalidField("ent.moving$", "is reserved for the move markers of shard routers");
  return Status::Ok();
}

Status ShardError(std::string_view shard, const Status& s) {
  return Status(s.code(), fmt::format("shard {}: {}", shard, s.message()),
                JsonObject().Add("shard", shard).str());
}

bool NewerItem(std::string_view item, std::string_view than) {
  auto ent_version = [](std::string_view text) -> std::optional<uint64_t> {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    if (!d.IsObject() || !d.HasMember("ent")) return std::nullopt;
    return VersionOf(ToJsonText(d["ent"]));
  };
  auto other = ent_version(than);
  return !other || ent_version(item).value_or(0) > *other;
}

}  // namespace shardkit::shard::internal
