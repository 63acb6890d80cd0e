#include "shardkit/message/router.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <span>
#include <unordered_map>

#include <fmt/format.h>

#include "find_property.h"
#include "same_bytes.h"
#include "shardkit/message/cache_lines.h"
#include "shardkit/message/short_hash.h"

namespace shardkit {
namespace {

using RoutePtr = std::shared_ptr<const Route>;
constexpr uint64_t kHashSeed = 0x5348415244u;  // "SHARD"

struct Shape {
  std::vector<std::string> exact_names;  // sorted
  std::vector<std::string> glob_names;   // sorted
  std::vector<std::string> all_names;    // sorted
};

Shape ShapeOf(const Pattern& pattern) {
  Shape shape;
  for (const Pattern::Term& t : pattern.terms()) {
    (t.glob ? shape.glob_names : shape.exact_names).push_back(t.name);
    shape.all_names.push_back(t.name);
  }
  std::sort(shape.exact_names.begin(), shape.exact_names.end());
  std::sort(shape.glob_names.begin(), shape.glob_names.end());
  std::sort(shape.all_names.begin(), shape.all_names.end());
  return shape;
}

// Rules 1–4 of router.h: negative when `a` ranks before `b`.
int CompareShapes(const Shape& a, const Shape& b) {
  if (a.exact_names.size() != b.exact_names.size()) {
    return a.exact_names.size() > b.exact_names.size() ? -1 : 1;
  }
  if (a.glob_names.size() != b.glob_names.size()) {
    return a.glob_names.size() > b.glob_names.size() ? -1 : 1;
  }
  if (a.all_names != b.all_names) return a.all_names < b.all_names ? -1 : 1;
  if (a.exact_names != b.exact_names) return a.exact_names < b.exact_names ? -1 : 1;
  return 0;
}

size_t LiteralGlobChars(const Pattern& pattern) {
  size_t n = 0;
  for (const Pattern::Term& t : pattern.terms()) {
    if (!t.glob) continue;
    for (char c : t.value) n += (c != '*' && c != '?');
  }
  return n;
}

// Rules 5–6, for patterns of the same shape.
bool MoreSpecificSameShape(const Pattern& a, const Pattern& b) {
  size_t la = LiteralGlobChars(a), lb = LiteralGlobChars(b);
  if (la != lb) return la > lb;
  return a.key() < b.key();
}

// The most exact terms a lookup holds on its stack; a group with more is matched term by term.
constexpr size_t kMaxKeyValues = 8;

// A route's exact values in its group's name order, each after its length (one byte below 255,
// else 255 and four bytes), so that distinct lists of values never encode alike; and their hash.
// A lookup hashes a message's values as they stand (a key built and read back at once stalls on
// store forwarding) and compares them with SameKey.
std::vector<std::string_view> ExactValues(const Pattern& pattern,
                                          const std::vector<std::string>& exact_names) {
  std::vector<std::string_view> values;
  for (const std::string& name : exact_names) {
    for (const Pattern::Term& t : pattern.terms()) {
      if (!t.glob && t.name == name) {
        values.push_back(t.value);
        break;
      }
    }
  }
  return values;
}

uint64_t HashValues(const Pattern& pattern, const std::vector<std::string>& exact_names) {
  uint64_t h = kHashSeed;
  for (std::string_view v : ExactValues(pattern, exact_names)) h = ShortHash(v, h);
  return h;
}

std::string EncodeValues(const Pattern& pattern, const std::vector<std::string>& exact_names) {
  std::string key;
  for (std::string_view v : ExactValues(pattern, exact_names)) {
    if (v.size() < 255) {
      key += static_cast<char>(v.size());
    } else {
      uint32_t size = static_cast<uint32_t>(v.size());
      key += static_cast<char>(255);
      key.append(reinterpret_cast<const char*>(&size), 4);
    }
    key += v;
  }
  return key;
}

// Whether each of the pattern's glob terms is `*` (a term that any routable value matches).
bool StarsOnly(const Route& route) {
  return std::all_of(route.pattern.terms().begin(), route.pattern.terms().end(),
                     [](const Pattern::Term& t) { return !t.glob || t.value == "*"; });
}

// Message::Find without the call (find_property.h).
[[gnu::always_inline]] inline const Value* FindValue(const Message& message,
                                                     std::string_view name) {
  const Property* found = internal::FindPropertyIn(message.properties(), name);
  return found != nullptr ? &found->value : nullptr;
}

// Whether `message` has a routable value for each of `names`.
bool AllRoutable(const Message& message, std::span<const std::string_view> names) {
  for (std::string_view name : names) {
    const Value* v = FindValue(message, name);
    if (v == nullptr || !v->is_routable()) return false;
  }
  return true;
}

// Whether `key` (EncodeValues) encodes exactly `values`.
[[gnu::always_inline]] inline bool SameKey(std::string_view key,
                                           const std::string_view* const* values, size_t n) {
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string_view v = *values[i];
    if (v.size() < 255) {
      if (at >= key.size() || static_cast<unsigned char>(key[at]) != v.size()) return false;
      at += 1;
    } else {
      uint32_t size = 0;
      if (at + 5 > key.size() || key[at] != static_cast<char>(255)) return false;
      std::memcpy(&size, key.data() + at + 1, 4);
      if (size != v.size()) return false;
      at += 5;
    }
    if (key.size() - at < v.size() || !internal::SameBytes(key.data() + at, v.data(), v.size()))
      return false;
    at += v.size();
  }
  return at == key.size();
}

}  // namespace

// On lines of its own, as its tables (the lookup reads its first fields).
class alignas(kCacheLine) Router::Index {
 public:
  struct Group {
    Shape shape;
    std::unordered_map<uint64_t, std::vector<RoutePtr>> buckets;  // by HashValues
    size_t count = 0;
  };
  std::vector<Group> groups;  // in rank order
  std::unordered_map<std::string, RoutePtr> by_key;

  Index() = default;
  // The read tables are not copied: they point into their own index's buckets.
  Index(const Index& other) : groups(other.groups), by_key(other.by_key) {}

  Group& GroupFor(const Shape& shape) {
    auto it = std::lower_bound(
        groups.begin(), groups.end(), shape,
        [](const Group& g, const Shape& s) { return CompareShapes(g.shape, s) < 0; });
    if (it != groups.end() && CompareShapes(it->shape, shape) == 0) return *it;
    Group group;
    group.shape = shape;
    it = groups.insert(it, std::move(group));
    return *it;
  }

  void Insert(RoutePtr route) {
    Shape shape = ShapeOf(route->pattern);
    Group& group = GroupFor(shape);
    auto& bucket = group.buckets[HashValues(route->pattern, shape.exact_names)];
    auto pos = std::lower_bound(bucket.begin(), bucket.end(), route,
                                [](const RoutePtr& a, const RoutePtr& b) {
                                  return MoreSpecificSameShape(a->pattern, b->pattern);
                                });
    bucket.insert(pos, route);
    ++group.count;
    by_key[route->pattern.key()] = std::move(route);
    built_.store(false, std::memory_order_relaxed);
  }

  void Erase(const RoutePtr& route) {
    built_.store(false, std::memory_order_relaxed);
    Shape shape = ShapeOf(route->pattern);
    auto git = std::find_if(groups.begin(), groups.end(),
                            [&](const Group& g) { return CompareShapes(g.shape, shape) == 0; });
    if (git == groups.end()) return;
    auto bit = git->buckets.find(HashValues(route->pattern, shape.exact_names));
    if (bit != git->buckets.end()) {
      auto& bucket = bit->second;
      bucket.erase(std::remove(bucket.begin(), bucket.end(), route), bucket.end());
      if (bucket.empty()) git->buckets.erase(bit);
      --git->count;
    }
    if (git->count == 0) groups.erase(git);
    by_key.erase(route->pattern.key());
  }

  // Visit(const Route*, const RoutePtr&) -> bool (true: stop); the pointers live as long as the
  // index is unchanged.
  template <typename Visit>
  void ForEachMatch(const Message& message, Visit visit) const {
    const std::string_view* values[kMaxKeyValues];
    for (const Table& table : Tables()) {
      const std::span<const std::string_view> names = table.names;
      uint64_t h = kHashSeed;
      bool present = true;
      for (size_t i = 0; i < names.size(); ++i) {
        const Value* v = FindValue(message, names[i]);
        if (v == nullptr || !v->is_routable()) {
          present = false;
          break;
        }
        if (i < kMaxKeyValues) values[i] = &v->text;
        h = ShortHash(v->text, h);
      }
      if (!present) continue;
      // Hashes can collide: the values are compared, and glob terms checked (a `*` only for a
      // routable value, as Pattern::Matches checks it).
      int globs_present = -1;  // not yet looked up
      for (const Entry& entry : table.Probe(h)) {
        bool matches;
        if (table.walk && !entry.stars_only) {
          matches = entry.route->pattern.Matches(message);
        } else {
          matches = SameKey(entry.key, values, names.size());
          if (matches && table.walk) {
            if (globs_present < 0) globs_present = AllRoutable(message, table.glob_names);
            matches = globs_present == 1;
          }
        }
        if (matches && visit(entry.route, *entry.owner)) return;
      }
    }
  }

  // The read path of one group, built from its buckets on the first lookup after a change
  // (routing changes are rare, lookups are per message): open addressing over the hashes, each
  // slot a run of entries in specificity order, the encoded values beside each route, so that a
  // match costs one probe and one compare, with no node-based map or pattern walk. Everything a
  // lookup reads sits in blocks of cache lines of their own (cache_lines.h): the first lookup
  // after a change builds them, on whichever thread, amid whatever that thread writes next.
  struct Entry {
    std::string_view key;   // EncodeValues of the route, in the table's text
    const Route* route;     // *owner, without the load of the bucket's element
    const RoutePtr* owner;  // into the group's bucket, unchanged until the next change
    bool stars_only;        // every glob term is `*`: matched by its key and present values
  };
  struct Slot {
    uint64_t hash = 0;
    uint32_t begin = 0, end = 0;  // entries; empty slot: begin == end
  };
  struct Table {
    LineVector<Slot> slots;
    size_t mask = 0;
    LineVector<Entry> entries;
    LineVector<std::string_view> names;       // the group's exact names, in the text
    LineVector<std::string_view> glob_names;  // and its glob names
    bool walk = false;                        // glob terms, or more exact ones than a lookup holds
    LineVector<char> text;  // the names and the keys; never reallocated once built

    std::span<const Entry> Probe(uint64_t hash) const {
      for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const Slot& slot = slots[i];
        if (slot.begin == slot.end) return {};
        if (slot.hash == hash) return {entries.data() + slot.begin, entries.data() + slot.end};
      }
    }
    std::string_view Keep(std::string_view bytes) {
      const size_t at = text.size();
      text.insert(text.end(), bytes.begin(), bytes.end());
      return std::string_view(text.data() + at, bytes.size());
    }
  };

  static Table Build(const Group& group) {
    Table table;
    std::vector<std::string> keys;
    size_t text_bytes = 0;
    for (const std::string& name : group.shape.all_names) text_bytes += name.size();
    for (const auto& [hash, routes] : group.buckets) {
      for (const RoutePtr& route : routes) {
        keys.push_back(EncodeValues(route->pattern, group.shape.exact_names));
        text_bytes += keys.back().size();
      }
    }
    table.text.reserve(text_bytes);  // the views below point into it
    for (const std::string& name : group.shape.exact_names) table.names.push_back(table.Keep(name));
    for (const std::string& name : group.shape.glob_names)
      table.glob_names.push_back(table.Keep(name));
    table.walk = !group.shape.glob_names.empty() || table.names.size() > kMaxKeyValues;
    const bool few_names = table.names.size() <= kMaxKeyValues;
    size_t capacity = 8;
    while (capacity < group.buckets.size() * 2) capacity <<= 1;
    table.slots.assign(capacity, Slot{});
    table.mask = capacity - 1;
    table.entries.reserve(group.count);
    size_t next_key = 0;
    for (const auto& [hash, routes] : group.buckets) {
      Slot slot{hash, static_cast<uint32_t>(table.entries.size()), 0};
      for (const RoutePtr& route : routes)
        table.entries.push_back(
            {table.Keep(keys[next_key++]), route.get(), &route, few_names && StarsOnly(*route)});
      slot.end = static_cast<uint32_t>(table.entries.size());
      size_t i = hash & table.mask;
      while (table.slots[i].begin != table.slots[i].end) i = (i + 1) & table.mask;
      table.slots[i] = slot;
    }
    return table;
  }

  // The tables, built once after a change; concurrent readers of an unchanged index (the
  // contract of router.h) wait for the one that builds them.
  const LineVector<Table>& Tables() const {
    if (!built_.load(std::memory_order_acquire)) BuildTables();
    return tables_;
  }
  [[gnu::noinline]] void BuildTables() const {
    std::lock_guard<std::mutex> lock(build_mu_);
    if (built_.load(std::memory_order_relaxed)) return;
    tables_.clear();
    tables_.reserve(groups.size());
    for (const Group& group : groups) tables_.push_back(Build(group));
    built_.store(true, std::memory_order_release);
  }

  mutable std::mutex build_mu_;
  mutable std::atomic<bool> built_{false};
  mutable LineVector<Table> tables_;  // per group, same order
};

Router::Router() : index_(std::make_unique<Index>()) {}
Router::~Router() = default;
Router::Router(const Router& other) : index_(std::make_unique<Index>(*other.index_)) {}
Router& Router::operator=(const Router& other) {
  if (this != &other) index_ = std::make_unique<Index>(*other.index_);
  return *this;
}
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

Status Router::Add(Pattern pattern, std::shared_ptr<Handler> handler, std::string description) {
  if (index_->by_key.count(pattern.key()) != 0) {
    return Status::Conflict(fmt::format(
        "pattern '{}' is already routed; use an override to replace it", pattern.ToString()));
  }
  auto route = std::make_shared<Route>(
      Route{std::move(pattern), std::move(handler), nullptr, std::move(description)});
  index_->Insert(std::move(route));
  return Status::Ok();
}

Status Router::Override(Pattern pattern, std::shared_ptr<Handler> handler,
                        std::string description) {
  auto existing = index_->by_key.find(pattern.key());
  RoutePtr prior;
  if (existing != index_->by_key.end()) {
    prior = existing->second;
    index_->Erase(prior);
  }
  auto route = std::make_shared<Route>(
      Route{std::move(pattern), std::move(handler), std::move(prior), std::move(description)});
  index_->Insert(std::move(route));
  return Status::Ok();
}

Status Router::Remove(const Pattern& pattern) {
  auto existing = index_->by_key.find(pattern.key());
  if (existing == index_->by_key.end()) {
    return Status::NotFound(fmt::format("pattern '{}' is not routed", pattern.ToString()));
  }
  RoutePtr route = existing->second;
  index_->Erase(route);
  if (route->prior) index_->Insert(route->prior);
  return Status::Ok();
}

std::shared_ptr<const Route> Router::Find(const Message& message) const {
  RoutePtr found;
  index_->ForEachMatch(message, [&](const Route*, const RoutePtr& route) {
    found = route;
    return true;
  });
  return found;
}

const Route* Router::FindBorrowed(const Message& message) const {
  const Route* found = nullptr;
  index_->ForEachMatch(message, [&](const Route* route, const RoutePtr&) {
    found = route;
    return true;
  });
  return found;
}

std::vector<std::shared_ptr<const Route>> Router::FindAll(const Message& message) const {
  std::vector<RoutePtr> all;
  index_->ForEachMatch(message, [&](const Route*, const RoutePtr& route) {
    all.push_back(route);
    return false;
  });
  return all;
}

std::shared_ptr<const Route> Router::Get(const Pattern& pattern) const {
  auto it = index_->by_key.find(pattern.key());
  return it == index_->by_key.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const Route>> Router::List() const {
  std::vector<RoutePtr> all;
  all.reserve(index_->by_key.size());
  for (const auto& [key, route] : index_->by_key) all.push_back(route);
  std::sort(all.begin(), all.end(), [](const RoutePtr& a, const RoutePtr& b) {
    return MoreSpecific(a->pattern, b->pattern);
  });
  return all;
}

size_t Router::size() const { return index_->by_key.size(); }

bool Router::MoreSpecific(const Pattern& a, const Pattern& b) {
  int shape = CompareShapes(ShapeOf(a), ShapeOf(b));
  if (shape != 0) return shape < 0;
  return MoreSpecificSameShape(a, b);
}

namespace {

std::string Mismatch(const Pattern& pattern, const Message& message) {
  for (const Pattern::Term& t : pattern.terms()) {
    const Value* v = message.Find(t.name);
    if (v == nullptr) return fmt::format("no property '{}'", t.name);
    if (!v->is_routable()) return fmt::format("'{}' is not a string, number or bool", t.name);
    bool ok = t.glob ? GlobMatches(t.value, v->text) : t.value == v->text;
    if (!ok) {
      return fmt::format("{} is '{}', pattern wants {}'{}'", t.name, v->text, t.glob ? "glob " : "",
                         t.value);
    }
  }
  return {};
}

}  // namespace

Explanation Router::Explain(const Message& message) const {
  Explanation out;
  std::vector<Explanation::Candidate> unmatched;
  for (const RoutePtr& route : List()) {
    std::string mismatch = Mismatch(route->pattern, message);
    if (mismatch.empty()) {
      out.candidates.push_back(
          {route, true,
           fmt::format("matches with {} exact and {} glob terms", route->pattern.exact_count(),
                       route->pattern.glob_count())});
    } else {
      unmatched.push_back({route, false, std::move(mismatch)});
    }
  }
  std::string routing = message.RoutingString();
  if (out.candidates.empty()) {
    out.summary =
        fmt::format("no pattern matches '{}' ({} patterns checked)", routing, unmatched.size());
  } else {
    out.winner = out.candidates.front().route;
    const Route& w = *out.winner;
    out.summary = fmt::format("'{}' goes to '{}'{}: {}", routing, w.pattern.ToString(),
                              w.description.empty() ? "" : fmt::format(" ({})", w.description),
                              out.candidates.front().reason);
    if (out.candidates.size() > 1) {
      out.summary += fmt::format("; it is more specific than {} other matching pattern(s):",
                                 out.candidates.size() - 1);
      for (size_t i = 1; i < out.candidates.size(); ++i) {
        out.summary += fmt::format(" '{}'", out.candidates[i].route->pattern.ToString());
      }
    }
  }
  for (auto& c : unmatched) out.candidates.push_back(std::move(c));
  return out;
}

}  // namespace shardkit
