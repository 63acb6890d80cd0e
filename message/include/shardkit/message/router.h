// Router: the pattern table. Finds the one most specific route for a message.
//
// Specificity (docs/routing.md has the rationale and examples). Among the routes whose pattern
// matches a message, the winner is the first by:
//   1. more exact (non-glob) terms;
//   2. then more glob terms;
//   3. then the sorted list of all term names, compared lexicographically, smaller first
//      ({a:1,c:*} beats {b:1,c:*});
//   4. then the sorted list of exact term names, smaller first ({a:1,b:*} beats {a:*,b:1});
//   5. then, globs only: more literal (non-wildcard) characters first (kind:ent* beats kind:e*);
//   6. then the pattern key (pattern.h), smaller first.
// So {b:1,c:1} beats {a:1} for {a:1,b:1,c:1}, unlike patrun's alphabetical walk.
//
// Adding a pattern that is already present is an error unless it is an override; an override
// keeps the replaced route reachable as `prior`, and removing an override restores its prior.
//
// Matching is indexed: routes are grouped by the names of their exact and glob terms, and within
// a group by a hash of their exact values, so a lookup costs one hash probe per group, not one
// comparison per route. Each group's probe table holds the encoded exact values beside each
// route, so a hit is confirmed with one compare, without walking the pattern.
//
// Thread-safety: a Router is a value. Concurrent Find/Explain on one instance are safe; mutation
// is not. The Bus publishes immutable snapshots (shared_ptr<const Router>) and swaps them
// atomically, so readers never see a half-built table.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shardkit/message/handler.h"
#include "shardkit/message/message.h"
#include "shardkit/message/pattern.h"
#include "shardkit/message/status.h"

namespace shardkit {

// One entry of the table. Immutable once added.
struct Route {
  Pattern pattern;
  std::shared_ptr<Handler> handler;
  std::shared_ptr<const Route> prior;  // the route this one overrode, if any
  std::string description;             // for listings and explain ("entry-store (rocksdb)")
};

// Why a message goes where it goes.
struct Explanation {
  struct Candidate {
    std::shared_ptr<const Route> route;
    bool matched = false;
    std::string reason;  // "matches: 2 exact, 0 glob terms" / "kind is 'x', pattern wants 'y'"
  };
  std::shared_ptr<const Route> winner;  // null when nothing matches
  std::vector<Candidate> candidates;    // matching ones first, in specificity order
  std::string summary;                  // one paragraph for people
};

class Router {
 public:
  Router();
  ~Router();
  Router(const Router&);
  Router& operator=(const Router&);
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Adds a route; `conflict` if the pattern is already present.
  Status Add(Pattern pattern, std::shared_ptr<Handler> handler, std::string description = {});
  // Adds a route in place of the present one for the same pattern, which becomes its prior.
  // Without a present one it is a plain Add.
  Status Override(Pattern pattern, std::shared_ptr<Handler> handler, std::string description = {});
  // Removes the route for `pattern`; its prior, if any, takes its place. `not_found` if absent.
  Status Remove(const Pattern& pattern);

  // The most specific matching route, or null.
  std::shared_ptr<const Route> Find(const Message& message) const;
  // The same route, not shared: valid while this router lives unchanged (a bus holds its
  // snapshot), and found without the reference count's two atomic operations, a third of a
  // lookup's cost.
  const Route* FindBorrowed(const Message& message) const;
  // Every matching route, most specific first.
  std::vector<std::shared_ptr<const Route>> FindAll(const Message& message) const;
  // The route whose pattern equals `pattern` (same key), or null.
  std::shared_ptr<const Route> Get(const Pattern& pattern) const;
  // Every route, in specificity order.
  std::vector<std::shared_ptr<const Route>> List() const;
  size_t size() const;

  Explanation Explain(const Message& message) const;

  // True when route `a` is preferred to route `b` by the rules above (for matching messages).
  static bool MoreSpecific(const Pattern& a, const Pattern& b);

 private:
  class Index;
  std::unique_ptr<Index> index_;
};

}  // namespace shardkit
