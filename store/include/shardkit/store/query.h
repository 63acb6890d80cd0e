// Query and ListPage: what EntityStore::List and RemoveWhere select, and one page of answers.
//
// Semantics (the contract the conformance suite checks):
// - Filters are equalities on top-level entity fields. The value is the JSON text of a scalar
//   (string, number, bool or null). Numbers compare by value (1 == 1.0). An entity without the
//   field never matches, not even a null filter.
// - Without a sort field, items come in key order (ksid, id): stable and cheap (a prefix scan that
//   stops after the page) but not meaningful to people; it is also the order a scatter/gather
//   over shards merges in. With a sort field, items come ordered by that field's value, ties by
//   (ksid, id); values of different types order as
//   missing < null < false < true < numbers < strings < arrays and objects (all equal).
//   "desc" reverses the whole order. A sorted listing reads the whole kind (no secondary indexes).
// - Skip and limit apply after the cursor. No limit means every remaining item here; the store:*
//   message service (service.h) answers a store:list without a limit with kDefaultListLimit items.
// - max_page_bytes bounds the stored bytes of one page's items: a page that would hold more is
//   refused (invalid, naming q.limit$) before it is read any further; RemoveWhere then removes
//   nothing.
// - A cursor names the position after the last item of a page (sort value, ksid, id), never an
//   offset: paging while others write neither skips nor repeats an item that existed throughout
//   with an unchanged sort value. A cursor only fits the query (kind, filters, sort) it came
//   from; anything else is invalid.
// - Fields projects top-level fields; "id" and "version" are always kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shardkit::store {

struct Filter {
  std::string field;
  std::string value_json;  // JSON text of a scalar, e.g. "\"alice\"", "42", "true", "null"
};

struct Query {
  std::string kind;
  std::vector<Filter> filters;
  std::string sort_field;           // empty: key order
  std::string sort_direction;       // "", "asc" or "desc"
  std::optional<int64_t> limit;     // >= 0; nullopt: no limit
  int64_t skip = 0;                 // >= 0
  std::vector<std::string> fields;  // empty: whole entities
  std::string cursor;               // empty: from the start; else ListPage::next_cursor
  size_t max_page_bytes = 0;        // 0: no bound
};

// The page size of a store:list message without `limit$` (docs/store.md).
inline constexpr int64_t kDefaultListLimit = 1000;

struct ListPage {
  std::vector<std::string> items;  // compact JSON entities, projected
  std::string next_cursor;         // empty when no item follows this page
};

}  // namespace shardkit::store
