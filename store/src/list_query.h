// List and RemoveWhere, engine-independent: validating a Query into a QueryPlan and selecting the
// rows of one page through Backend::Scan. Semantics are documented in <shardkit/store/query.h>.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include <shardkit/store/query.h>

#include "backend.h"
#include "cursor.h"

namespace shardkit::store::internal {

struct QueryPlan {
  struct ParsedFilter {
    std::string field;
    std::unique_ptr<rapidjson::Document> value;
  };
  std::string kind;
  std::vector<ParsedFilter> filters;
  std::string sort_field;  // empty: key order
  bool descending = false;
  std::optional<size_t> limit;
  size_t skip = 0;
  size_t max_page_bytes = 0;  // 0: no bound
  std::vector<std::string> fields;
  uint64_t fingerprint = 0;             // of kind, filters and sort: what a cursor must match
  std::optional<CursorPosition> after;  // from the cursor
};

// invalid naming the field for any bad member of `query`.
Result<QueryPlan> PlanQuery(const Query& query);

struct Selection {
  std::vector<EntityRecord> rows;  // live rows of the page, in order
  std::string next_cursor;         // empty if nothing follows
};

Result<Selection> SelectRows(Backend& backend, const QueryPlan& plan, int64_t now_ms);

}  // namespace shardkit::store::internal
