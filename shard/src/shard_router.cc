// The shard router: keyed forwarding with one retry on wrong_shard, per-shard splitting of bulk
// messages, and scatter/gather of lists and removes by query. The guard is in shard_guard.cc.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <limits>
#include <mutex>

#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/shard/shard_router.h>
#include <shardkit/store/keyspace.h>
#include <shardkit/store/list_order.h>
#include <shardkit/store/service.h>

#include "bulk_plan.h"
#include "cross_shard_move.h"
#include "list_merge.h"
#include "remove_by_query.h"
#include "shard_key.h"

namespace shardkit::shard {
namespace {

using MapPtr = std::shared_ptr<const ShardMap>;

Status ShardError(const Shard& shard, const Status& s) {
  return internal::ShardError(shard.name, s);
}

// The JSON array a bulk request carries in `field`; `invalid` naming the field otherwise.
Result<rapidjson::Document> ArrayField(const Message& message, std::string_view field,
                                       std::string_view items) {
  const Value* value = message.Find(field);
  if (value->type != ValueType::kArray)
    return Status::InvalidField(field, fmt::format("must be an array of {}", items));
  return ParseJson(value->text, field);
}

// The map's shard names, in its order: what a bulk reply's answers are joined by.
std::vector<std::string> Names(const ShardMap& map) {
  std::vector<std::string> names;
  for (const Shard& shard : map.shards()) names.push_back(shard.name);
  return names;
}

// Collects one answer per shard, then calls `finish` once with all of them.
struct Gather {
  std::mutex mu;
  size_t pending = 0;
  std::vector<std::optional<Result<Message>>> answers;  // guarded by mu
};

class ShardRouter final : public Handler, public std::enable_shared_from_this<ShardRouter> {
 public:
  explicit ShardRouter(ShardRouterOptions options) : options_(std::move(options)) {}

  void Handle(Message message, const Context& context, ReplyFn reply) override {
    if (Status refused = internal::RefuseMoveFields(message); !refused.ok())
      return reply(std::move(refused));
    if (NeedsClaim(message)) return ClaimThenRoute(context, std::move(message), std::move(reply));
    Route(context, std::move(message), std::move(reply), 0, "");
  }

 private:
  // Each shard judges an idempotency key against its own receipts only, and a keyed write may
  // reach several shards (a bulk save, a remove by query, a move), or another shard than the
  // key's first request did: a key reused for another request would be written by the shards
  // that never saw it. So a keyed write first claims its key for this request on the key's home
  // shard (store:claim); a reuse is refused there before anything is written (docs/sharding.md).
  static bool NeedsClaim(const Message& m) {
    if (m.meta().idempotency_key.empty() || m.Has("shard") || !m.GetString("kind")) return false;
    auto op = m.GetString("store");
    return op && (*op == "save" || *op == "remove");
  }

  void ClaimThenRoute(const Context& context, Message message, ReplyFn reply) {
    const std::string key = message.meta().idempotency_key;
    Message claim = internal::KeyClaim(message);
    auto self = shared_from_this();
    ForwardKeyed(
        context, std::move(claim), store::Ksid(key),
        [self, context, message = std::move(message), reply, key](Result<Message> r) mutable {
          if (!r.ok()) return reply(internal::ClaimRefused(key, r.status()));
          self->Route(context, std::move(message), std::move(reply), 0, "");
        },
        false);
  }

  // A move met while routing is completed, then the message is routed again, at most this often.
  static constexpr int kMaxAttempts = 8;

  // `seen`: the tombstones the previous round found (cross_shard_move.h, RouterSteps::recheck).
  void Route(const Context& context, Message message, ReplyFn reply, int attempt,
             const std::string& seen) {
    if (auto shard = message.GetString("shard")) {
      // Already routed to a shard, yet it reached the router again: no service serves that shard.
      reply(Status::Unavailable(fmt::format("no service answers for shard '{}'", *shard),
                                JsonObject().Add("shard", *shard).str()));
      return;
    }
    auto op = message.GetString("store");
    if (op && *op == "changes") {
      reply(
          Status::Invalid("shard: store:changes reads one shard's feed; name it with shard:<range>",
                          R"({"field":"shard"})"));
      return;
    }
    const Value* kind = message.Find("kind");
    if (kind == nullptr || kind->type != ValueType::kString) {
      reply(Status::Invalid(kind ? "kind: must be a string" : "kind: is required",
                            R"({"field":"kind"})"));
      return;
    }
    MapPtr map = options_.map->Current();
    auto ksid = internal::MessageKsid(message, *map);
    if (!ksid.ok()) {
      reply(std::move(ksid).status());
      return;
    }
    const bool by_field = map->ShardKeyOf(kind->text) != "id";
    if (*ksid && by_field && op && *op == "save" && internal::SaveId(message)) {
      auto steps = Steps(context, message, attempt, seen);  // before `message` moves
      return internal::SaveByField(std::move(steps), std::move(message), map->ShardFor(**ksid).name,
                                   std::move(reply));
    }
    if (*ksid && by_field && message.Has("id")) {
      // A load or remove with the shard-key value: the shard may hold a move marker.
      auto steps = Steps(context, message, attempt, seen);
      std::string shard = map->ShardFor(**ksid).name, id(message.Find("id")->text);
      return ForwardKeyed(
          context, std::move(message), **ksid,
          [steps, shard, kind = std::string(kind->text), id, reply](Result<Message> r) {
            internal::Settle(steps, shard, kind, id, std::move(r), reply);
          },
          false);
    }
    if (*ksid)
      return ForwardKeyed(context, std::move(message), **ksid, std::move(reply), false,
                          std::move(map));
    if (op && *op == "save") {
      if (message.Has("ents")) return SaveBulk(context, std::move(message), std::move(reply));
      // A save without an id: the id is generated first, then routed. A keyed save's id comes
      // from its key, so its copies meet the first one's receipt on the same shard.
      const std::string& key = message.meta().idempotency_key;
      message.SetString("id", key.empty() ? options_.ids->NextId()
                                          : internal::KeyedId(*message.GetString("kind"), key));
      auto again = internal::MessageKsid(message, *map);
      if (!again.ok() || !*again) {
        reply(again.ok() ? Status::Internal("no shard key after generating an id")
                         : std::move(again).status());
        return;
      }
      ForwardKeyed(context, std::move(message), **again, std::move(reply), false);
      return;
    }
    if (op && (*op == "load" || *op == "remove") && message.Has("id")) {
      auto steps = Steps(context, message, attempt, seen);
      std::string id(message.Find("id")->text);
      bool load = *op == "load";
      return steps.ask_all(message, [steps, kind = std::string(kind->text), id, load, reply](
                                        std::vector<std::string> shards, Answers answers) {
        internal::AnswerFromAll(steps, shards, std::move(answers), kind, id, load, reply);
      });
    }
    if (op && *op == "load" && message.Has("ids"))
      return LoadBulk(context, std::move(message), std::move(reply), attempt, seen);
    if (op && *op == "list")
      return List(context, std::move(message), std::move(reply), attempt, seen);
    if (op && *op == "remove") return RemoveByQuery(context, std::move(message), std::move(reply));
    // Anything else goes to every shard and must agree: let the first shard answer it.
    ForwardKeyed(context, std::move(message), 0, std::move(reply), false);
  }

  using Answers = std::vector<std::optional<Result<Message>>>;

  // What the cross-shard move code may do for `message` (cross_shard_move.h).
  internal::RouterSteps Steps(const Context& context, const Message& message, int attempt,
                              const std::string& seen) {
    auto self = shared_from_this();
    internal::RouterSteps steps;
    steps.seen = seen;
    // A shard named by an earlier step may have left the map since (a split or merge cut over
    // meanwhile): that is a wrong_shard, after which the map is refreshed and the message routed
    // again (the steps retry on it).
    steps.send = [self, context](const std::string& name, Message m, ReplyFn r) {
      MapPtr map = self->options_.map->Current();
      const Shard* shard = map->Find(name);
      if (shard == nullptr)
        return r(Status::WrongShard(fmt::format("shard {} is not in the shard map", name),
                                    JsonObject().Add("shard", name).str()));
      const uint64_t epoch = map->epoch();
      context.Act(ToShard(std::move(m), *shard, epoch),
                  [self, epoch, r = std::move(r)](Result<Message> answer) {
                    if (!answer.ok() && answer.status().code() == Code::kWrongShard)
                      self->Refresh(epoch);
                    r(std::move(answer));
                  });
    };
    steps.ask_all = [self, context](Message m,
                                    std::function<void(std::vector<std::string>, Answers)> done) {
      self->Scatter(
          context, [m](const Shard&, size_t) { return std::optional<Message>(m); },
          [done](const MapPtr& map, Answers answers) { done(Names(*map), std::move(answers)); });
    };
    steps.recheck = [self, context, message, attempt](std::string tombstones, ReplyFn r) {
      if (attempt + 1 >= kMaxAttempts)
        return r(
            Status::Conflict("id: the entity kept changing or moving while it was routed; "
                             "send the message again",
                             R"({"field":"id"})"));
      self->Route(context, message, std::move(r), attempt + 1, tombstones);
    };
    steps.retry = [recheck = steps.recheck](ReplyFn r) { recheck("", std::move(r)); };
    return steps;
  }

  static Message ToShard(Message message, const Shard& shard, uint64_t epoch) {
    // `cache:true` only chose this router (a cache sits in front of it); shards don't care.
    message.Remove("cache");
    message.SetString("shard", shard.name);
    message.SetUint("epoch", epoch);
    return message;
  }

  // ToShard of a message the caller keeps: the copy made once, with room for the two properties.
  static Message CopyToShard(Message& message, const Shard& shard, uint64_t epoch) {
    message.Share();  // the copy below takes a reference; its Reserve copies with room
    Message copy(message);
    copy.Reserve(copy.size() + 2, std::size("shard") + shard.name.size() + std::size("epoch") +
                                      std::numeric_limits<uint64_t>::digits10 + 1);
    return ToShard(std::move(copy), shard, epoch);
  }

  // After a wrong_shard: fetch the authoritative map; true if ours changed.
  bool Refresh(uint64_t seen_epoch) {
    if (!options_.refresh) return false;
    auto fresh = options_.refresh();
    if (!fresh.ok()) return false;
    MapPtr current = options_.map->Current();
    if (current->epoch() != seen_epoch) return true;  // someone refreshed meanwhile
    if (fresh->epoch() <= current->epoch()) return false;
    return options_.map->CompareAndSwap(current->epoch(), std::move(fresh).value()).ok() ||
           options_.map->Current()->epoch() != seen_epoch;
  }

  // `map`: the map the caller routed by, if it has one (read once per message, not twice).
  void ForwardKeyed(const Context& context, Message message, uint64_t ksid, ReplyFn reply,
                    bool retried, MapPtr map = nullptr) {
    if (map == nullptr) map = options_.map->Current();
    const Shard& shard = map->ShardFor(ksid);
    uint64_t epoch = map->epoch();
    // The shard's copy first: the callback keeps the message itself (moved, not copied again)
    // to route it once more after a wrong_shard.
    Message to_shard = CopyToShard(message, shard, epoch);
    // What the answer needs, in one block the callback shares: the bus copies the callback on
    // each dispatch, and a callback of all this would not fit a ReplyFn's own room, so each of
    // those copies would allocate and copy the message, context and reply it holds.
    struct Pending {
      std::shared_ptr<ShardRouter> self;
      Context context;
      Message message;
      ReplyFn reply;
    };
    auto pending = std::make_shared<Pending>(
        Pending{shared_from_this(), context, std::move(message), std::move(reply)});
    context.Act(std::move(to_shard), [pending, ksid, retried, epoch](Result<Message> r) {
      Pending& p = *pending;
      if (!r.ok() && r.status().code() == Code::kWrongShard && !retried && p.self->Refresh(epoch)) {
        p.self->ForwardKeyed(p.context, std::move(p.message), ksid, std::move(p.reply), true);
        return;
      }
      p.reply(std::move(r));
    });
  }

  // Sends `make(shard)` to every shard; `finish(map, answers)` runs once all answered. A
  // wrong_shard from any shard refreshes the map and repeats the whole scatter once.
  using MakeChild = std::function<std::optional<Message>(const Shard&, size_t index)>;
  using Finish = std::function<void(const MapPtr&, std::vector<std::optional<Result<Message>>>)>;

  void Scatter(const Context& context, MakeChild make, Finish finish, bool retried = false) {
    MapPtr map = options_.map->Current();
    auto gather = std::make_shared<Gather>();
    const auto& shards = map->shards();
    gather->answers.resize(shards.size());
    std::vector<std::pair<size_t, Message>> children;
    for (size_t i = 0; i < shards.size(); ++i) {
      if (auto child = make(shards[i], i))
        children.emplace_back(i, ToShard(std::move(*child), shards[i], map->epoch()));
    }
    gather->pending = children.size();
    auto self = shared_from_this();
    auto complete = [self, context, make, finish, map, gather, retried]() {
      bool stale = false;
      for (const auto& a : gather->answers)
        stale |= a && !a->ok() && a->status().code() == Code::kWrongShard;
      if (stale && !retried && self->Refresh(map->epoch())) {
        self->Scatter(context, make, finish, true);
        return;
      }
      finish(map, std::move(gather->answers));
    };
    if (children.empty()) {
      complete();
      return;
    }
    for (auto& [index, child] : children) {
      context.Act(std::move(child), [gather, index = index, complete](Result<Message> r) {
        bool last;
        {
          std::lock_guard<std::mutex> lock(gather->mu);
          gather->answers[index].emplace(std::move(r));
          last = --gather->pending == 0;
        }
        if (last) complete();
      });
    }
  }

  using BulkItem = internal::BulkItem;
  using BulkPlan = internal::BulkPlan;
  using ItemAnswers = std::shared_ptr<std::vector<std::string>>;  // per item answer JSON

  // Splits `ents` per shard and answers per item, in request order.
  void SaveBulk(const Context& context, Message message, ReplyFn reply) {
    auto doc = ArrayField(message, "ents", "objects");
    if (!doc.ok()) return reply(doc.status());
    MapPtr map = options_.map->Current();
    std::string kind(*message.GetString("kind"));
    const std::string& key_field = map->ShardKeyOf(kind);
    size_t n = doc->Size();
    auto items = std::make_shared<std::vector<std::string>>(n);
    auto plan = std::make_shared<BulkPlan>(map->shards().size());
    bool placed_ids = false;
    for (size_t i = 0; i < n; ++i) {
      rapidjson::Value& item = (*doc)[static_cast<rapidjson::SizeType>(i)];
      Message probe;
      probe.SetString("store", "save").SetString("kind", kind);
      if (item.IsObject() && key_field == "id" && !item.HasMember("id")) {
        const std::string& key = message.meta().idempotency_key;
        std::string id = key.empty() ? options_.ids->NextId() : internal::KeyedId(kind, key, i);
        item.AddMember("id",
                       rapidjson::Value(id.c_str(), static_cast<rapidjson::SizeType>(id.size()),
                                        doc->GetAllocator()),
                       doc->GetAllocator());
      }
      std::string text = ToJsonText(item);
      if (!item.IsObject()) {
        (*items)[i] = ToJson(ErrorMessage(
            Status::Invalid(fmt::format("ents[{}]: must be an object", i), R"({"field":"ents"})")));
        continue;
      }
      probe.SetObjectJson("ent", text);
      auto ksid = internal::MessageKsid(probe, *map);
      if (!ksid.ok() || !*ksid) {
        Status s = ksid.ok() ? Status::Invalid("no shard key") : ksid.status();
        (*items)[i] = ToJson(ErrorMessage(
            Status(s.code(), fmt::format("ents[{}]: {}", i, s.message()), s.details_json())));
        continue;
      }
      size_t shard_index = &map->ShardFor(**ksid) - map->shards().data();
      std::optional<std::string> id;
      if (key_field != "id") id = internal::SaveId(probe);
      placed_ids |= id.has_value();
      (*plan)[shard_index].push_back(BulkItem{i, std::move(text), std::move(id)});
    }
    if (placed_ids && map->shards().size() > 1) {
      auto self = shared_from_this();
      auto send = [self, context, message, items, reply](std::shared_ptr<BulkPlan> kept) {
        self->SendBulk(context, message, std::move(kept), items, reply);
      };
      return internal::RefuseBulkMoves(Steps(context, message, 0, ""), kind, key_field, plan, items,
                                       std::move(send), std::move(reply));
    }
    SendBulk(context, std::move(message), plan, items, std::move(reply));
  }

  // Sends each shard its part of a bulk save. A shard that answers wrong_shard (the map moved:
  // a split or move cut over meanwhile) applied none of its part; those items alone are placed
  // again on the refreshed map and sent once more, so no item is applied twice.
  void SendBulk(const Context& context, Message message, std::shared_ptr<BulkPlan> plan,
                ItemAnswers items, ReplyFn reply, bool replanned = false) {
    auto self = shared_from_this();
    auto finish = [self, context, message, plan, items, reply, replanned](
                      const MapPtr& map, std::vector<std::optional<Result<Message>>> answers) {
      std::vector<BulkItem> stale;
      for (size_t s = 0; s < answers.size(); ++s) {
        if (!answers[s]) continue;
        Result<Message>& a = *answers[s];
        if (!replanned && !a.ok() && a.status().code() == Code::kWrongShard &&
            self->Refresh(map->epoch())) {
          for (const BulkItem& item : (*plan)[s]) stale.push_back(item);
          continue;
        }
        internal::FillBulkAnswers(map->shards()[s], (*plan)[s], a, *items);
      }
      if (!stale.empty()) return self->Replan(context, message, std::move(stale), items, reply);
      std::string array = "[";
      for (size_t i = 0; i < items->size(); ++i) array += (i ? "," : "") + (*items)[i];
      Message out;
      out.SetArrayJson("items", array + "]");
      reply(std::move(out));
    };
    // Scatter's own retry would resend every part on the new map: this one resends the stale.
    Scatter(
        context,
        [plan, message](const Shard&, size_t index) -> std::optional<Message> {
          const auto& planned = (*plan)[index];
          if (planned.empty()) return std::nullopt;
          std::string array = "[";
          for (size_t j = 0; j < planned.size(); ++j) array += (j ? "," : "") + planned[j].text;
          Message child = message;
          child.SetArrayJson("ents", array + "]");
          return child;
        },
        std::move(finish), /*retried=*/true);
  }

  // Places the items a stale shard refused on the current map and sends them (once).
  void Replan(const Context& context, const Message& message, std::vector<BulkItem> stale,
              ItemAnswers items, ReplyFn reply) {
    MapPtr map = options_.map->Current();
    auto plan = std::make_shared<BulkPlan>(map->shards().size());
    std::string kind(message.GetString("kind").value_or(""));
    for (BulkItem& item : stale) {
      Message probe;
      probe.SetString("store", "save").SetString("kind", kind).SetObjectJson("ent", item.text);
      auto ksid = internal::MessageKsid(probe, *map);
      if (!ksid.ok() || !*ksid) {
        (*items)[item.position] = ToJson(ErrorMessage(
            ksid.ok() ? Status::Internal("no shard key on the refreshed map") : ksid.status()));
        continue;
      }
      (*plan)[&map->ShardFor(**ksid) - map->shards().data()].push_back(std::move(item));
    }
    SendBulk(context, message, std::move(plan), std::move(items), std::move(reply), true);
  }

  using LoadPlan = internal::LoadPlan;

  // Bulk load: id-sharded kinds split per shard; field-sharded kinds ask every shard.
  void LoadBulk(const Context& context, Message message, ReplyFn reply, int attempt,
                const std::string& seen) {
    auto doc = ArrayField(message, "ids", "ids");
    if (!doc.ok()) return reply(doc.status());
    MapPtr map = options_.map->Current();
    bool by_id = map->ShardKeyOf(*message.GetString("kind")) == "id";
    size_t n = doc->Size();
    auto plan = std::make_shared<LoadPlan>(internal::PlanLoad(*doc, *map, by_id));
    auto answers_per_item = std::make_shared<std::vector<std::string>>(n);
    auto steps = Steps(context, message, attempt, seen);
    std::string kind(*message.GetString("kind"));
    Scatter(
        context,
        [plan, message](const Shard&, size_t index) -> std::optional<Message> {
          auto& [positions, array] = (*plan)[index];
          if (positions.empty()) return std::nullopt;
          Message child = message;
          child.SetArrayJson("ids", array + "]");
          return child;
        },
        [self = shared_from_this(), plan, answers_per_item, steps, kind, reply](
            const MapPtr& map, std::vector<std::optional<Result<Message>>> answers) {
          auto& out = *answers_per_item;
          std::vector<internal::MoveMarker> markers;
          for (size_t s = 0; s < answers.size(); ++s) {
            if (!answers[s]) continue;
            Result<Message>& a = *answers[s];
            // The plan is per shard of `map`: a moved map means planning the whole load again.
            if (!a.ok() && a.status().code() == Code::kWrongShard && self->Refresh(map->epoch()))
              return steps.retry(reply);
            if (!a.ok()) return reply(ShardError(map->shards()[s], a.status()));
            rapidjson::Document shard_items;
            auto text = a->GetArrayJson("items").value_or("[]");
            shard_items.Parse(text.data(), text.size());
            const auto& positions = (*plan)[s].first;
            for (size_t j = 0;
                 j < positions.size() && shard_items.IsArray() && j < shard_items.Size(); ++j) {
              const auto& item = shard_items[static_cast<rapidjson::SizeType>(j)];
              std::string text = ToJsonText(item);
              if (auto marker = internal::MarkerOf(kind, map->shards()[s].name, text)) {
                if (!marker->done) markers.push_back(std::move(*marker));
                if (out[positions[j]].empty())  // a tombstone: not found here
                  out[positions[j]] = ToJson(ErrorMessage(Status::NotFound("no such entity")));
                continue;
              }
              // A found entity beats another shard's not_found (field-sharded kinds ask all), a
              // newer copy an older one (a load between two steps of a move).
              if (out[positions[j]].empty() ||
                  (item.HasMember("ent") && internal::NewerItem(text, out[positions[j]])))
                out[positions[j]] = std::move(text);
            }
          }
          if (!markers.empty()) {
            auto retry = steps.retry;
            return internal::CompleteAll(steps, std::move(markers),
                                         [retry, reply] { retry(reply); });
          }
          std::string array = "[";
          for (size_t i = 0; i < out.size(); ++i) array += (i ? "," : "") + out[i];
          Message reply_message;
          reply_message.SetArrayJson("items", array + "]");
          reply(std::move(reply_message));
        },
        /*retried=*/true);
  }

  // The shards' pages merge as a stream (list_merge.h). `refreshed`: the map was refreshed
  // after a wrong_shard once already, which this list does not repeat.
  void List(const Context& context, Message message, ReplyFn reply, int attempt,
            const std::string& seen, bool refreshed = false) {
    auto query = store::QueryFromMessage(message);
    if (!query.ok()) return reply(query.status());
    if (!query->limit) query->limit = store::kDefaultListLimit;  // as a store: one page
    MapPtr map = options_.map->Current();
    auto order = store::ListOrder::Make(*query, map->ShardKeyOf(query->kind));
    if (!order.ok()) return reply(order.status());
    internal::ListMergeOptions merge;
    merge.order = std::make_shared<store::ListOrder>(std::move(order).value());
    merge.kind = query->kind;
    merge.shards = Names(*map);
    merge.partial = message.GetBool("partial").value_or(false);
    merge.max_page = options_.max_shard_page;
    auto self = shared_from_this();
    Message child = message;
    child.Remove("partial");
    merge.fetch = [context, child, map, q = std::string(message.GetObjectJson("q").value_or("{}"))](
                      size_t index, const std::string& cursor, size_t limit, ReplyFn r) {
      auto page_q = internal::ShardPageQuery(q, cursor, limit);
      if (!page_q.ok()) return r(page_q.status());
      Message ask = child;
      ask.SetObjectJson("q", *page_q);
      context.Act(ToShard(std::move(ask), map->shards()[index], map->epoch()), std::move(r));
    };
    merge.refresh = [self, map, refreshed] { return !refreshed && self->Refresh(map->epoch()); };
    auto steps = Steps(context, message, attempt, seen);
    internal::MergeList(std::move(merge), [self, context, message, reply, attempt, seen,
                                           steps](internal::ListEnd end) {
      if (end.restart) return self->List(context, message, reply, attempt, seen, true);
      if (!end.markers.empty()) {
        auto retry = steps.retry;
        return internal::CompleteAll(steps, std::move(end.markers),
                                     [retry, reply] { retry(reply); });
      }
      reply(std::move(end.answer));
    });
  }

  void RemoveByQuery(const Context& context, Message message, ReplyFn reply) {
    if (message.GetBool("all") != true) {
      return reply(Status::Invalid("all: removing by query needs all:true (or give an id)",
                                   R"({"field":"all"})"));
    }
    auto query = store::QueryFromMessage(message);
    if (!query.ok()) return reply(query.status());
    if (query->limit || query->skip != 0 || !query->cursor.empty()) {
      return reply(Status::Invalid(
          "q: limit$, skip$ and cursor$ are not supported when removing by query across shards",
          R"({"field":"q"})"));
    }
    auto measure = internal::MeasureRemoval(message);
    if (!measure.ok()) return reply(measure.status());
    // As a store's: room for the rest of the reply (count, meta$) besides the items.
    const size_t bound = options_.max_reply_bytes > 8192 ? options_.max_reply_bytes - 4096
                                                         : options_.max_reply_bytes;
    auto self = shared_from_this();
    Scatter(
        context, [list = *measure](const Shard&, size_t) { return std::optional<Message>(list); },
        [self, context, message, reply, bound](const MapPtr& map, internal::ShardAnswers answers) {
          auto shares = internal::RemovalShares(Names(*map), std::move(answers), bound);
          if (!shares.ok()) return reply(shares.status());
          self->RemoveShares(context, message, std::move(shares).value(), bound, reply);
        });
  }

  // Each shard removes its matches only if they fit in its share, else nothing (store service).
  void RemoveShares(const Context& context, const Message& message,
                    std::map<std::string, uint64_t> shares, size_t bound, ReplyFn reply) {
    Scatter(
        context,
        [message, shares = std::move(shares), bound](const Shard& shard, size_t) {
          Message child = message;
          auto share = shares.find(shard.name);  // a shard new to the map: an equal share
          child.SetUint("max_reply_bytes", share != shares.end()
                                               ? share->second
                                               : std::max<size_t>(bound / (shares.size() + 1), 1));
          return std::optional<Message>(std::move(child));
        },
        [reply](const MapPtr& map, internal::ShardAnswers answers) {
          reply(internal::JoinRemovals(Names(*map), std::move(answers)));
        },
        /*retried=*/true);  // a map that moved now would resend to shards that already removed
  }

  ShardRouterOptions options_;
};

}  // namespace

std::shared_ptr<Handler> MakeShardRouter(ShardRouterOptions options) {
  return std::make_shared<ShardRouter>(std::move(options));
}

}  // namespace shardkit::shard
