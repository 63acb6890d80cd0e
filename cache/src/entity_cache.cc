#include "shardkit/cache/entity_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include <shardkit/message/codec.h>
#include <shardkit/message/inline_text.h>
#include <shardkit/message/json.h>
#include <shardkit/message/short_hash.h>

#include "adaptive_lock.h"
#include "coarse_clock.h"
#include "entry_table.h"
#include "policy.h"

namespace shardkit::cache {
namespace {

// Stripes of at least this many bytes each (a small cache is one stripe: its bound stays exact
// for the policy), at most kMaxStripes. Small enough that a cache of a few MiB already has 16:
// threads then rarely meet on one stripe's lock and lines, while each stripe's policy still
// orders hundreds of entries (`bench cache`'s hit ratio: 0.7843 with 16 stripes, 0.7856 with 2).
constexpr size_t kStripeBytes = size_t{1} << 17;
constexpr size_t kMaxStripes = 16;
// What one entry is expected to take, to size the frequency sketch.
constexpr size_t kTypicalEntryBytes = 256;
// Landed flights a stripe keeps for reuse: about as many as loads it has in flight at once.
constexpr size_t kSpareFlights = 8;

std::string EntityKey(std::string_view kind, std::string_view id) {
  std::string key = "e";
  key += kind;
  key += '\0';
  key += id;
  return key;
}

// EntityKey's text for one lookup, on the stack when it is short: a hit allocates nothing.
class EntityKeyText : public InlineText {
 public:
  EntityKeyText(std::string_view kind, std::string_view id)
      : InlineText(2 + kind.size() + id.size()) {
    char* out = data();
    out[0] = 'e';
    kind.copy(out + 1, kind.size());
    out[1 + kind.size()] = '\0';
    id.copy(out + 2 + kind.size(), id.size());
  }
};

std::string ListPrefix(std::string_view kind) {
  std::string key = "l";
  key += kind;
  key += '\0';
  return key;
}

// An id as the store reads it (string or integer text).
std::optional<std::string_view> IdText(const Value* id) {
  if (id == nullptr || !(id->type == ValueType::kString || id->type == ValueType::kNumber))
    return std::nullopt;
  return std::string_view(id->text);
}

// The id of a load/save/remove message.
std::optional<std::string_view> IdOf(const Message& m) { return IdText(m.Find("id")); }

// What the cache reads of a request, found in one pass over its properties (every request reads
// all five, most of them absent: five lookups were five scans).
struct Request {
  const Value *cache = nullptr, *store = nullptr, *kind = nullptr, *id = nullptr;
  bool has_ids = false;

  explicit Request(const Message& m) {
    for (const Property& p : m.properties()) {
      if (p.name == "store") {
        store = &p.value;
      } else if (p.name == "kind") {
        kind = &p.value;
      } else if (p.name == "id") {
        id = &p.value;
      } else if (p.name == "ids") {
        has_ids = true;
      } else if (p.name == "cache") {
        cache = &p.value;
      }
    }
  }
  bool marked() const { return cache && cache->AsBool() == true; }
  static std::optional<std::string_view> String(const Value* v) {
    return v != nullptr ? v->AsString() : std::nullopt;
  }
};

// One share of the table, with its own lock, entries, policy and loads in flight: threads that
// read different keys rarely share a lock. On lines of its own, with the lock and the counters a
// hit writes on the first, so a hit moves one line between cores and no neighbour's.
struct alignas(kCacheLine) Stripe {
  // The policy's slot is the entry's first part: the slots it evicts lead back to their entries.
  // On lines of its own: a hot entry, read by every thread, shares none with a block that one
  // thread writes (the heap hands the blocks a thread frees back to that thread's next requests).
  struct alignas(kCacheLine) Entry : Slot {
    explicit Entry(Result<Message> a) : answer(std::move(a)) {}
    int64_t expires_at_ms = 0;  // before the answer: a hit reads it with the slot
    Result<Message> answer;     // properties shared (Message::Share): a hit copies a reference
  };
  // One store load and its waiters. The load's callback holds only the cache and this, so it
  // fits a ReplyFn without an allocation. Landed flights are kept for the next misses
  // (`spare_flights`):
  // at a steady state a miss allocates no flight, key or waiter list.
  struct Flight {
    std::string key;
    uint64_t hash = 0;
    int64_t ttl_ms = 0;
    ReplyFn first;               // the caller whose miss started the load
    std::vector<ReplyFn> later;  // callers of the same key while it was in flight
    bool stale = false;          // an invalidation happened while the load was in flight
  };
  // Held for a lookup or a fill, never across a call out of the cache: short enough to spin for.
  mutable AdaptiveLock mu;
  CacheStats stats;  // guarded by mu (bytes and entries computed)
  size_t max_bytes = 0;
  std::unique_ptr<Policy> policy;  // guarded by mu
  EntryTable<Entry> entries;       // guarded by mu
  // Loads in flight that a reader of their key may still wait for; a stale one (its key was
  // written meanwhile) is moved to `detached` until it lands.
  EntryTable<Flight> flights;                          // guarded by mu
  std::vector<std::unique_ptr<Flight>> detached;       // guarded by mu
  std::vector<std::unique_ptr<Flight>> spare_flights;  // guarded by mu
  std::vector<Slot*> evicted;                          // guarded by mu; scratch of InsertLocked
  // The last entry let go, kept for the next fill: at a steady state nearly every miss evicts (or
  // refuses) one entry as it adds one, so this spares an allocation of the entry and its key.
  std::unique_ptr<Entry> spare;  // guarded by mu
  // The cache itself, held once its last handle is gone while loads of this stripe are still in
  // flight (Cache::Abandon): their callbacks hold no reference of their own, which every miss
  // would write on one line shared by all threads. Handed back when the last of them lands.
  std::shared_ptr<void> keep_alive;  // guarded by mu

  uint64_t Lookups() const { return stats.hits + stats.misses; }  // the policy's clock
  void EraseLocked(Entry* entry) {
    policy->Remove(*entry);
    Release(entries.Take(entry->hash, entry));
  }
  // Keeps `gone` as the spare; its answer is dropped at once (the memory bound counts it gone).
  void Release(std::unique_ptr<Entry> gone) {
    gone->answer = Message();
    spare = std::move(gone);
  }
  void InsertLocked(std::string_view key, uint64_t hash, Result<Message> answer,
                    int64_t expires_at_ms, size_t charge) {
    if (Entry* existing = entries.Find(hash, key)) EraseLocked(existing);
    if (charge > max_bytes) return;
    std::unique_ptr<Entry> made = std::move(spare);
    if (made) {
      made->answer = std::move(answer);
    } else {
      made = std::make_unique<Entry>(std::move(answer));
    }
    made->expires_at_ms = expires_at_ms;
    made->key = key;
    made->hash = hash;
    made->charge = charge;
    Entry& e = entries.Insert(hash, std::move(made));
    evicted.clear();
    policy->Add(e, evicted, Lookups());
    for (Slot* gone : evicted)  // unlinked by the policy
      Release(entries.Take(gone->hash, static_cast<Entry*>(gone)));
    stats.evictions += evicted.size();
  }
  void InvalidateLocked(const std::string& key, uint64_t hash) {
    ++stats.invalidations;
    if (Entry* e = entries.Find(hash, key)) EraseLocked(e);
    // A load in flight may have read the old value: it must not fill, and nobody who asks after
    // this write may wait for it — detach it, so the next reader starts a fresh load.
    if (Flight* flight = flights.Find(hash, key)) DetachLocked(flight);
  }
  void DetachLocked(Flight* flight) {
    flight->stale = true;
    detached.push_back(flights.Take(flight->hash, flight));
  }
  // The flight that landed leaves the table (or the detached list) and is kept for reuse; when it
  // was the last of an abandoned cache's, the cache's last reference comes back, to be dropped
  // once the lock is released.
  [[nodiscard]] std::shared_ptr<void> RetireLocked(Flight& flight) {
    std::unique_ptr<Flight> done;
    if (flight.stale) {
      auto it = std::find_if(detached.begin(), detached.end(),
                             [&](const auto& d) { return d.get() == &flight; });
      done = std::move(*it);
      *it = std::move(detached.back());
      detached.pop_back();
    } else {
      done = flights.Take(flight.hash, &flight);
    }
    if (spare_flights.size() < kSpareFlights) spare_flights.push_back(std::move(done));
    if (!LoadsInFlightLocked()) return std::move(keep_alive);
    return nullptr;
  }
  bool LoadsInFlightLocked() const { return flights.size() > 0 || !detached.empty(); }
  std::unique_ptr<Flight> NewFlightLocked() {
    if (spare_flights.empty()) return std::make_unique<Flight>();
    std::unique_ptr<Flight> reused = std::move(spare_flights.back());
    spare_flights.pop_back();
    reused->stale = false;
    return reused;
  }
  void DropPrefixLocked(const std::string& prefix) {
    std::vector<Entry*> matching;
    entries.ForEach([&](Entry& e) {
      if (e.key.view().starts_with(prefix)) matching.push_back(&e);
    });
    for (Entry* e : matching) EraseLocked(e);
    DetachFlightsLocked(prefix);
  }
  void DetachFlightsLocked(std::string_view prefix) {
    std::vector<Flight*> matching;
    flights.ForEach([&](Flight& f) {
      if (std::string_view(f.key).starts_with(prefix)) matching.push_back(&f);
    });
    for (Flight* f : matching) DetachLocked(f);
  }
  void ClearLocked() {
    DetachFlightsLocked("");
    std::vector<Entry*> all;
    entries.ForEach([&](Entry& e) { all.push_back(&e); });
    for (Entry* e : all) EraseLocked(e);
  }
};

// What an entry costs beyond its key's and properties' text, charged against max_bytes: the entry
// itself (its policy slot, its key's first 48 bytes, expiry and answer, on whole cache lines), its
// table's two (hash, entry) pairs (the table stays at most half full) and the header of the
// shared properties' block.
constexpr size_t kEntryOverhead = sizeof(Stripe::Entry) + 2 * 16 + 64;

size_t Charge(std::string_view key, const Message& reply) {
  size_t bytes = (key.size() > SlotKey::kInline ? key.size() : 0) + kEntryOverhead;
  for (const Property& p : reply.properties()) bytes += p.name.size() + p.value.text.size();
  return bytes;
}

// On lines of its own: what every lookup reads (the stripes, the options) is then apart from the
// reference counts of its shared_ptr's control block, which each miss's callback writes.
class alignas(kCacheLine) Cache final : public EntityCache,
                                        public std::enable_shared_from_this<Cache> {
 public:
  explicit Cache(CacheOptions options)
      : options_(options),
        clock_(options.clock ? options.clock : &SystemClock::Default()),
        // A node hands every cache its clock, the system's unless a test set another.
        coarse_clock_(clock_ == &SystemClock::Default()) {
    const size_t count = std::clamp<size_t>(
        std::bit_floor(std::max<size_t>(1, options.max_bytes / kStripeBytes)), 1, kMaxStripes);
    shift_ = 64 - std::countr_zero(count);
    for (size_t i = 0; i < count; ++i) {
      auto stripe = std::make_unique<Stripe>();
      stripe->max_bytes = options.max_bytes / count;
      stripe->policy = MakePolicy(
          options.policy == CachePolicy::kLru ? PolicyKind::kLru : PolicyKind::kTinyLfu,
          stripe->max_bytes, std::max<size_t>(1, stripe->max_bytes / kTypicalEntryBytes));
      stripes_.push_back(std::move(stripe));
    }
  }

  void Handle(Message message, const Context& context, ReplyFn reply) override {
    // Without a prior, a marked message came back: no store serves the marked pattern. A cache
    // that decorates a store serves a marked one like any other (another node's cache sent it).
    const Request request(message);
    if (request.marked() && !context.has_prior()) {
      reply(Status::Unavailable(
          fmt::format("no store answers '{}' with cache:true", message.RoutingString())));
      return;
    }
    auto op = Request::String(request.store);
    auto kind = Request::String(request.kind);
    if (!op || !kind) return Forward(context, std::move(message), std::move(reply));
    if (*op == "load" && !request.has_ids) {
      if (auto id = IdText(request.id)) {
        const EntityKeyText key(*kind, *id);
        return Read(context, std::move(message), key.view(), options_.ttl_ms, std::move(reply));
      }
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
    CacheStats total;
    for (const auto& stripe : stripes_) {
      std::lock_guard<AdaptiveLock> lock(stripe->mu);
      const CacheStats& s = stripe->stats;
      total.hits += s.hits;
      total.misses += s.misses;
      total.evictions += s.evictions;
      total.coalesced += s.coalesced;
      total.stale_refills_prevented += s.stale_refills_prevented;
      total.invalidations += s.invalidations;
      total.bytes_used += stripe->policy->bytes();
      total.entries += stripe->entries.size();
    }
    return total;
  }

  void Invalidate(std::string_view kind, std::string_view id) override {
    Invalidate(std::string(kind), std::vector<std::string>{std::string(id)});
  }

  void Clear() override {
    for (auto& stripe : stripes_) {
      std::lock_guard<AdaptiveLock> lock(stripe->mu);
      stripe->ClearLocked();
    }
  }

  // The last handle is gone (MakeEntityCache's deleter): the cache goes with `self`, but for the
  // stripes with loads in flight, each of which keeps a reference until its last load lands.
  static void Abandon(std::shared_ptr<Cache> self) {
    for (auto& stripe : self->stripes_) {
      std::lock_guard<AdaptiveLock> lock(stripe->mu);
      if (stripe->LoadsInFlightLocked()) stripe->keep_alive = self;
    }
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
  using Flight = Stripe::Flight;

  // ShortHash, not std::hash: under half the instructions for a key of about 20 bytes.
  static uint64_t HashOf(std::string_view key) { return ShortHash(key); }
  Stripe& StripeOf(uint64_t hash) const {
    // The top bits pick the stripe (the sketch indexes by the low ones).
    return *stripes_[shift_ >= 64 ? 0 : (hash * 0x9E3779B97F4A7C15ull) >> shift_];
  }

  // A hit's expiry check: the coarse wall clock far from the expiry (coarse_clock.h) when this
  // cache reads the system clock, so a hit seldom pays a precise clock read and never serves late.
  bool FreshAt(int64_t expires_at_ms) const {
    return coarse_clock_ ? CoarseClock::Before(expires_at_ms) : expires_at_ms > clock_->NowMs();
  }

  // To the store: the route this cache overrides when it decorates the store in the same node,
  // else a second trip through the bus marked cache:true (the store is elsewhere).
  // By reference, as Read: each move of a message or a reply costs the moves of its strings.
  static void Forward(const Context& context, Message&& message, ReplyFn&& reply) {
    if (context.has_prior()) return context.Prior(std::move(message), std::move(reply));
    message.SetBool("cache", true);
    context.Act(std::move(message), std::move(reply));
  }

  // `key` is read only before the store is asked (it may point into `message`).
  void Read(const Context& context, Message&& message, std::string_view key, int64_t ttl_ms,
            ReplyFn&& reply) {
    const uint64_t hash = HashOf(key);
    Stripe& stripe = StripeOf(hash);
    Flight* flight = nullptr;
    {
      std::unique_lock<AdaptiveLock> lock(stripe.mu);
      if (Stripe::Entry* entry = stripe.entries.Find(hash, key)) {
        if (FreshAt(entry->expires_at_ms)) {
          ++stripe.stats.hits;
          stripe.policy->Hit(*entry, stripe.Lookups());
          Result<Message> answer = entry->answer;  // its properties are shared, not copied
          lock.unlock();
          reply(std::move(answer));
          return;
        }
        stripe.EraseLocked(entry);
      }
      stripe.policy->Record(hash);
      ++stripe.stats.misses;
      if (Flight* existing = stripe.flights.Find(hash, key)) {
        ++stripe.stats.coalesced;
        existing->later.push_back(std::move(reply));
        return;
      }
      std::unique_ptr<Flight> made = stripe.NewFlightLocked();
      made->key = key;
      made->hash = hash;
      made->ttl_ms = ttl_ms;
      made->first = std::move(reply);
      flight = &stripe.flights.Insert(hash, std::move(made));
    }
    // The flight lives until it lands (the stripe keeps it, in its table or detached), and so does
    // the cache (Abandon).
    Forward(context, std::move(message),
            [this, flight](Result<Message> answer) { Land(*flight, std::move(answer)); });
  }

  // A load came back: fill (unless stale or an error) and answer every waiter.
  void Land(Flight& flight, Result<Message> answer) {
    Stripe& stripe = StripeOf(flight.hash);
    std::shared_ptr<void> last_hold;  // destroyed last: it may be this cache's last reference
    ReplyFn first;
    std::vector<ReplyFn> later;
    // Shared once here, the answer's properties cost every waiter and every later hit a
    // reference count rather than a copy.
    if (answer.ok()) answer->Share();
    const bool cacheable =
        answer.ok() || (answer.status().code() == Code::kNotFound && options_.not_found_ttl_ms > 0);
    // What the entry would hold, made before the lock is taken: it is held for the table alone.
    // The entry keeps no metadata; the waiters' answer keeps the reply's.
    Message kept = answer.ok() ? answer->PropertiesOnly() : Message();
    int64_t expires_at_ms = 0;
    size_t charge = 0;
    if (cacheable) {
      const int64_t ttl =
          answer.ok() ? flight.ttl_ms : std::min(flight.ttl_ms, options_.not_found_ttl_ms);
      // The coarse clock is never ahead of the precise one: a fill dated by it expires no later.
      expires_at_ms = (coarse_clock_ ? CoarseClock::NowMsOrEarlier() : clock_->NowMs()) + ttl;
      // Never past the entity's own expiry (a store:load reply names it).
      if (auto lives_until = answer.ok() ? answer->GetInt("expires_at") : std::nullopt)
        expires_at_ms = std::min(expires_at_ms, *lives_until);
      charge = Charge(flight.key, kept);
    }
    {
      std::lock_guard<AdaptiveLock> lock(stripe.mu);
      first = std::move(flight.first);
      later.swap(flight.later);
      if (cacheable && flight.stale) {
        ++stripe.stats.stale_refills_prevented;
      } else if (cacheable) {
        stripe.InsertLocked(
            flight.key, flight.hash,
            answer.ok() ? Result<Message>(std::move(kept)) : Result<Message>(answer.status()),
            expires_at_ms, charge);
      }
      last_hold = stripe.RetireLocked(flight);  // `flight` may serve another miss from here on
    }
    if (later.empty()) return first(std::move(answer));
    first(answer);
    for (size_t i = 0; i < later.size(); ++i)
      later[i](i + 1 == later.size() ? std::move(answer) : answer);
  }

  void Write(const Context& context, Message message, std::string kind, ReplyFn reply) {
    std::vector<std::string> ids;
    if (auto id = IdOf(message)) ids.emplace_back(*id);
    auto self = shared_from_this();
    Forward(context, std::move(message), [self, kind, ids, reply](Result<Message> answer) {
      // Invalidate on every answer: even a failed write may have been applied.
      std::vector<std::string> affected = ids;
      if (answer.ok()) CollectIds(*answer, affected);
      self->Invalidate(kind, affected);
      reply(std::move(answer));
    });
  }

  // Drops the entries of `ids` of `kind` and, when lists are cached, every list of `kind`.
  void Invalidate(const std::string& kind, const std::vector<std::string>& ids) {
    for (const std::string& id : ids) {
      const std::string key = EntityKey(kind, id);
      const uint64_t hash = HashOf(key);
      Stripe& stripe = StripeOf(hash);
      std::lock_guard<AdaptiveLock> lock(stripe.mu);
      stripe.InvalidateLocked(key, hash);
    }
    if (!options_.cache_lists) return;
    const std::string prefix = ListPrefix(kind);
    for (auto& stripe : stripes_) {
      std::lock_guard<AdaptiveLock> lock(stripe->mu);
      stripe->DropPrefixLocked(prefix);
    }
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

  const CacheOptions options_;
  const Clock* clock_;
  const bool coarse_clock_;                       // clock_ is the system clock
  std::vector<std::unique_ptr<Stripe>> stripes_;  // fixed after construction
  int shift_ = 64;                                // 64 - log2(stripes)
};

}  // namespace

std::shared_ptr<EntityCache> MakeEntityCache(CacheOptions options) {
  auto cache = std::make_shared<Cache>(options);
  EntityCache* handle = cache.get();
  return std::shared_ptr<EntityCache>(handle, [cache = std::move(cache)](EntityCache*) mutable {
    Cache::Abandon(std::move(cache));
  });
}

}  // namespace shardkit::cache
