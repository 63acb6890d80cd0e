#include "shardkit/message/router.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

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

uint64_t HashExactValues(const Pattern& pattern, const std::vector<std::string>& exact_names) {
  uint64_t h = kHashSeed;
  for (const std::string& name : exact_names) {
    for (const Pattern::Term& t : pattern.terms()) {
      if (t.name == name) {
        h = XXH3_64bits_withSeed(t.value.data(), t.value.size(), h);
        break;
      }
    }
  }
  return h;
}

}  // namespace

class Router::Index {
 public:
  struct Group {
    Shape shape;
    std::unordered_map<uint64_t, std::vector<RoutePtr>> buckets;  // the source of truth
    size_t count = 0;
    // The read path: open addressing over `buckets`, rebuilt after every change (routing changes
    // are rare, lookups are per message; a node-based map's probe misses the caches at 10k routes).
    std::vector<std::pair<uint64_t, const std::vector<RoutePtr>*>> table;
    size_t mask = 0;

    void Rebuild() {
      size_t capacity = 8;
      while (capacity < buckets.size() * 2) capacity <<= 1;
      table.assign(capacity, {0, nullptr});
      mask = capacity - 1;
      for (const auto& [hash, routes] : buckets) {
        size_t i = hash & mask;
        while (table[i].second != nullptr) i = (i + 1) & mask;
        table[i] = {hash, &routes};
      }
    }
    const std::vector<RoutePtr>* Probe(uint64_t hash) const {
      if (table.empty()) return nullptr;
      for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const auto& slot = table[i];
        if (slot.second == nullptr) return nullptr;
        if (slot.first == hash) return slot.second;
      }
    }
  };

  std::vector<Group> groups;  // in rank order
  std::unordered_map<std::string, RoutePtr> by_key;

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
    auto& bucket = group.buckets[HashExactValues(route->pattern, shape.exact_names)];
    auto pos = std::lower_bound(bucket.begin(), bucket.end(), route,
                                [](const RoutePtr& a, const RoutePtr& b) {
                                  return MoreSpecificSameShape(a->pattern, b->pattern);
                                });
    bucket.insert(pos, route);
    ++group.count;
    group.Rebuild();
    by_key[route->pattern.key()] = std::move(route);
  }

  void Erase(const RoutePtr& route) {
    Shape shape = ShapeOf(route->pattern);
    auto git = std::find_if(groups.begin(), groups.end(),
                            [&](const Group& g) { return CompareShapes(g.shape, shape) == 0; });
    if (git == groups.end()) return;
    uint64_t h = HashExactValues(route->pattern, shape.exact_names);
    auto bit = git->buckets.find(h);
    if (bit != git->buckets.end()) {
      auto& bucket = bit->second;
      bucket.erase(std::remove(bucket.begin(), bucket.end(), route), bucket.end());
      if (bucket.empty()) git->buckets.erase(bit);
      --git->count;
    }
    if (git->count == 0) {
      groups.erase(git);
    } else {
      git->Rebuild();
    }
    by_key.erase(route->pattern.key());
  }

  template <typename Visit>  // Visit(const RoutePtr&) -> bool (true: stop)
  void ForEachMatch(const Message& message, Visit visit) const {
    for (const Group& group : groups) {
      uint64_t h = kHashSeed;
      bool present = true;
      for (const std::string& name : group.shape.exact_names) {
        const Value* v = message.Find(name);
        if (v == nullptr || !v->is_routable()) {
          present = false;
          break;
        }
        h = XXH3_64bits_withSeed(v->text.data(), v->text.size(), h);
      }
      if (!present) continue;
      const std::vector<RoutePtr>* bucket = group.Probe(h);
      if (bucket == nullptr) continue;
      for (const RoutePtr& route : *bucket) {
        // A hash hit is checked term by term: hashes can collide.
        if (route->pattern.Matches(message) && visit(route)) return;
      }
    }
  }
};

Router::Router() : index_(std::make_unique<Index>()) {}
Router::~Router() = default;
// A copied group's table points into the original's buckets: rebuild it over its own.
Router::Router(const Router& other) : index_(std::make_unique<Index>(*other.index_)) {
  for (auto& group : index_->groups) group.Rebuild();
}
Router& Router::operator=(const Router& other) {
  if (this != &other) {
    index_ = std::make_unique<Index>(*other.index_);
    for (auto& group : index_->groups) group.Rebuild();
  }
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
  index_->ForEachMatch(message, [&](const RoutePtr& route) {
    found = route;
    return true;
  });
  return found;
}

std::vector<std::shared_ptr<const Route>> Router::FindAll(const Message& message) const {
  std::vector<RoutePtr> all;
  index_->ForEachMatch(message, [&](const RoutePtr& route) {
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
