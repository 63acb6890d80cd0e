// List cursors: an opaque, checksummed text naming the position after the last item of a page
// (sort value if sorted, ksid, id) and the query it belongs to (a fingerprint of kind, filters and
// sort). Anything else a client sends back is rejected as invalid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <shardkit/message/status.h>

#include "sort_value.h"

namespace shardkit::store::internal {

struct CursorPosition {
  std::optional<SortValue> sort_value;  // set when the query is sorted by a field
  uint64_t ksid = 0;
  std::string id;
};

std::string EncodeCursor(uint64_t query_fingerprint, const CursorPosition& position);
// invalid (field "cursor") if malformed, tampered with, or from another query.
Result<CursorPosition> DecodeCursor(std::string_view cursor, uint64_t query_fingerprint);

}  // namespace shardkit::store::internal
