#include "shardkit/cache/entity_cache.h"

#include <fmt/format.h>

#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>

namespace shardkit::cache {
namespace {

constexpr size_t kEntryOverhead = 96;  // list node, hash node, bookkeeping: charged per entry

std::string EntityKey(std::string_view kind, std::string_view id) {
  std::string key = "e";
  key += kind;
  key += '\0';
  key += id;
  return key;
}

std::string ListPrefix(std::string_view kind) {
  std::string key = "l";
  key += kind;
  key += '\0';
  return key;
}

// The id of a load/save/remove message, as the store reads it (string or integer text).
std::optional<std::string> IdOf(const Message& m) {
  const Value* id = m.Find("id");
  if (id == nullptr || !(id->type == ValueType::kString || id->type == ValueType::kNumber))
    return std::nullopt;
  return id->text;
}

size_t Charge(const std::string& key, const Message& reply) {
  size_t bytes = key.size() + kEntryOverhead;
  for (const Property& p : reply.properties()) bytes += p.name.size() + p.value.text.size();
  return bytes;
}

class Cache final : public EntityCache, public std::enable_shared_from_this<Cache> {
 public:
  explicit Cache(CacheOptions options)
      : options_(options), clock_(options.clock ? options.clock : &SystemClock::Default()) {}

  void Handle(Message message, const Context& context, ReplyFn reply) override {
    // Without a prior, a marked message came back: no store serves the marked pattern. A cache
    // that decorates a store serves a marked one like any other (another node's cache sent it).
    if (message.GetBool("cache") == true && !context.has_prior()) {
      reply(Status::Unavailable(
          fmt::format("no store answers '{}' with cache:true", message.RoutingString())));
      return;
    }
    auto op = message.GetString("store");
    auto kind = message.GetString("kind");
    if (!op || !kind) return Forward(context, std::move(message), std::move(reply));
    if (*op == "load" && !message.Has("ids")) {
      if (auto id = IdOf(message))
        return Read(context, std::move(message), EntityKey(*kind, *id), options_.ttl_ms,
                    std::move(reply));
    }
    if (*op == "list" && options_.cache_lists) {
      Message key_source = message;
      key_source.meta() = Meta();
      return Read(context, std::move(message), ListPrefix(*kind) + ToJson(key_source),
                  options_.list_ttl_ms, std::move(reply));
    }
    if (*op == "save" || *op == "remove")
      return Write(context, std::move(message), std::string(*kind), std::move(reply));
    Forward(context, std::move(message), std::move(reply));
  }

  CacheStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    CacheStats s = stats_;
    s.bytes_used = bytes_;
    s.entries = entries_.size();
    return s;
  }

  void Invalidate(std::string_view kind, std::string_view id) override {
    std::lock_guard<std::mutex> lock(mu_);
    InvalidateLocked(EntityKey(kind, id));
    InvalidateListsLocked(kind);
  }

  void Clear() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, flight] : flights_) flight->stale = true;
    flights_.clear();
    entries_.clear();
    lru_.clear();
    bytes_ = 0;
  }

  std::shared_ptr<Handler> StatsHandler() override {
    std::weak_ptr<Cache> weak = shared_from_this();
    return MakeSyncHandler([weak](Message, const Context&) -> Result<Message> {
      auto self = weak.lock();
      if (!self) return Status::Unavailable("the cache is gone");
      CacheStats s = self->stats();
      Message out;
      out.SetUint("hits", s.hits).SetUint("misses", s.misses).SetDouble("hit_ratio", s.hit_ratio());
      out.SetUint("evictions", s.evictions).SetUint("coalesced", s.coalesced);
      out.SetUint("stale_refills_prevented", s.stale_refills_prevented)
          .SetUint("invalidations", s.invalidations);
      out.SetUint("bytes_used", s.bytes_used).SetUint("entries", s.entries);
      return out;
    });
  }

 private:
  struct Entry {
    Result<Message> reply;  // a value or a cached not_found
    int64_t expires_at_ms;
    size_t charge;
    std::list<std::string>::iterator lru;
  };
  struct Flight {
    std::vector<ReplyFn> waiters;
    bool stale = false;  // an invalidation happened while the load was in flight
  };

  // To the store: the route this cache overrides when it decorates the store in the same node,
  // else a second trip through the bus marked cache:true (the store is elsewhere).
  static void Forward(const Context& context, Message message, ReplyFn reply) {
    if (context.has_prior()) return context.Prior(std::move(message), std::move(reply));
    message.SetBool("cache", true);
    context.Act(std::move(message), std::move(reply));
  }

  void Read(const Context& context, Message message, std::string key, int64_t ttl_ms,
            ReplyFn reply) {
    std::shared_ptr<Flight> flight;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        if (it->second.expires_at_ms > clock_->NowMs()) {
          ++stats_.hits;
          lru_.splice(lru_.begin(), lru_, it->second.lru);
          Result<Message> answer = it->second.reply;
          lock.unlock();
          reply(std::move(answer));
          return;
        }
        EraseLocked(it);
      }
      ++stats_.misses;
      auto existing = flights_.find(key);
      if (existing != flights_.end()) {
        ++stats_.coalesced;
        existing->second->waiters.push_back(std::move(reply));
        return;
      }
      flight = std::make_shared<Flight>();
      flight->waiters.push_back(std::move(reply));
      flights_[key] = flight;
    }
    auto self = shared_from_this();
    Forward(context, std::move(message), [self, key, ttl_ms, flight](Result<Message> answer) {
      self->Land(key, ttl_ms, flight, std::move(answer));
    });
  }

  // A load came back: fill (unless stale or an error) and answer every waiter.
  void Land(const std::string& key, int64_t ttl_ms, const std::shared_ptr<Flight>& flight,
            Result<Message> answer) {
    std::vector<ReplyFn> waiters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      waiters = std::move(flight->waiters);
      bool stale = flight->stale;
      auto current = flights_.find(key);
      if (current != flights_.end() && current->second == flight) flights_.erase(current);
      bool cacheable = answer.ok() ||
                       (answer.status().code() == Code::kNotFound && options_.not_found_ttl_ms > 0);
      if (cacheable && stale) {
        ++stats_.stale_refills_prevented;
      } else if (cacheable) {
        int64_t ttl = answer.ok() ? ttl_ms : std::min(ttl_ms, options_.not_found_ttl_ms);
        int64_t expires_at_ms = clock_->NowMs() + ttl;
        // Never past the entity's own expiry (a store:load reply names it).
        if (auto lives_until = answer.ok() ? answer->GetInt("expires_at") : std::nullopt)
          expires_at_ms = std::min(expires_at_ms, *lives_until);
        Message stored = answer.ok() ? *answer : Message();
        stored.meta() = Meta();
        Result<Message> to_store =
            answer.ok() ? Result<Message>(std::move(stored)) : Result<Message>(answer.status());
        InsertLocked(key, std::move(to_store), expires_at_ms);
      }
    }
    for (size_t i = 0; i < waiters.size(); ++i) {
      waiters[i](i + 1 == waiters.size() ? std::move(answer) : answer);
    }
  }

  void Write(const Context& context, Message message, std::string kind, ReplyFn reply) {
    std::vector<std::string> ids;
    if (auto id = IdOf(message)) ids.push_back(*id);
    auto self = shared_from_this();
    Forward(context, std::move(message), [self, kind, ids, reply](Result<Message> answer) {
      // Invalidate on every answer: even a failed write may have been applied.
      std::vector<std::string> affected = ids;
      if (answer.ok()) CollectIds(*answer, affected);
      {
        std::lock_guard<std::mutex> lock(self->mu_);
        for (const auto& id : affected) self->InvalidateLocked(EntityKey(kind, id));
        self->InvalidateListsLocked(kind);
      }
      reply(std::move(answer));
    });
  }

  // Ids named by a store's answer: {"ent":{id}} or {"items":[{"ent":{id}}|{id}…]}.
  static void CollectIds(const Message& answer, std::vector<std::string>& out) {
    auto add_from = [&](const rapidjson::Value& ent) {
      if (!ent.IsObject()) return;
      auto id = ent.FindMember("id");
      if (id != ent.MemberEnd() && id->value.IsString())
        out.emplace_back(id->value.GetString(), id->value.GetStringLength());
    };
    if (auto ent = answer.GetObjectJson("ent")) {
      auto doc = ParseJson(*ent, "ent");
      if (doc.ok()) add_from(*doc);
    }
    if (auto items = answer.GetArrayJson("items")) {
      auto doc = ParseJson(*items, "items");
      if (doc.ok() && doc->IsArray()) {
        for (const auto& item : doc->GetArray()) {
          if (item.IsObject() && item.HasMember("ent")) {
            add_from(item["ent"]);
          } else {
            add_from(item);
          }
        }
      }
    }
  }

  void InsertLocked(const std::string& key, Result<Message> reply, int64_t expires_at_ms) {
    auto existing = entries_.find(key);
    if (existing != entries_.end()) EraseLocked(existing);
    size_t charge = Charge(key, reply.ok() ? *reply : Message());
    if (charge > options_.max_bytes) return;
    while (bytes_ + charge > options_.max_bytes && !lru_.empty()) {
      EraseLocked(entries_.find(lru_.back()));
      ++stats_.evictions;
    }
    lru_.push_front(key);
    entries_.emplace(key, Entry{std::move(reply), expires_at_ms, charge, lru_.begin()});
    bytes_ += charge;
  }

  void EraseLocked(std::unordered_map<std::string, Entry>::iterator it) {
    bytes_ -= it->second.charge;
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }

  void InvalidateLocked(const std::string& key) {
    ++stats_.invalidations;
    auto it = entries_.find(key);
    if (it != entries_.end()) EraseLocked(it);
    // A load in flight may have read the old value: it must not fill, and nobody who asks after
    // this write may wait for it — detach it, so the next reader starts a fresh load.
    auto flight = flights_.find(key);
    if (flight != flights_.end()) {
      flight->second->stale = true;
      flights_.erase(flight);
    }
  }

  void InvalidateListsLocked(std::string_view kind) {
    if (!options_.cache_lists) return;
    std::string prefix = ListPrefix(kind);
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto next = std::next(it);
      if (it->first.compare(0, prefix.size(), prefix) == 0) EraseLocked(it);
      it = next;
    }
    for (auto it = flights_.begin(); it != flights_.end();) {
      if (it->first.compare(0, prefix.size(), prefix) == 0) {
        it->second->stale = true;
        it = flights_.erase(it);
      } else {
        ++it;
      }
    }
  }

  const CacheOptions options_;
  const Clock* clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::list<std::string> lru_;                      // guarded by mu_: most recent first
  std::unordered_map<std::string, std::shared_ptr<Flight>>
      flights_;       // guarded by mu_: loads joinable now
  size_t bytes_ = 0;  // guarded by mu_
  CacheStats stats_;  // guarded by mu_ (bytes/entries computed)
};

}  // namespace

std::shared_ptr<EntityCache> MakeEntityCache(CacheOptions options) {
  return std::make_shared<Cache>(options);
}

}  // namespace shardkit::cache
