#include "list_query.h"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

#include <xxhash.h>

#include "entity_json.h"
#include "validation.h"

namespace shardkit::store::internal {
namespace {

uint64_t Fingerprint(const QueryPlan& plan) {
  std::string text = plan.kind;
  text.push_back('\0');
  text.append(plan.sort_field);
  text.push_back('\0');
  text.push_back(plan.descending ? 'd' : 'a');
  for (const auto& f : plan.filters) {
    text.push_back('\0');
    text.append(f.field);
    text.push_back('\0');
    text.append(Compact(*f.value));
  }
  return XXH64(text.data(), text.size(), 0);
}

// A matching row with the values it is ordered by.
struct Candidate {
  std::optional<SortValue> sort_value;
  EntityRecord row;
};

int CompareCandidates(const std::optional<SortValue>& a_sort, uint64_t a_ksid,
                      const std::string& a_id, const std::optional<SortValue>& b_sort,
                      uint64_t b_ksid, const std::string& b_id) {
  if (a_sort && b_sort) {
    if (int c = Compare(*a_sort, *b_sort); c != 0) return c;
  }
  if (a_ksid != b_ksid) return a_ksid < b_ksid ? -1 : 1;
  return a_id.compare(b_id) < 0 ? -1 : (a_id == b_id ? 0 : 1);
}

class RowMatcher {
 public:
  explicit RowMatcher(const QueryPlan& plan) : plan_(plan) {}

  // Whether `row` matches the filters; fills `sort_value` when the query is sorted.
  bool Matches(const EntityRecord& row, std::optional<SortValue>& sort_value) {
    if (plan_.filters.empty() && plan_.sort_field.empty()) return true;
    allocator_.Clear();  // one arena reused for every row: a pool allocator never frees otherwise
    rapidjson::Document doc(&allocator_);
    doc.Parse<rapidjson::kParseFullPrecisionFlag>(row.value.data(), row.value.size());
    if (doc.HasParseError() || !doc.IsObject()) return false;  // never stored by us
    for (const auto& f : plan_.filters) {
      const rapidjson::Value* v = FindMember(doc, f.field);
      if (v == nullptr || !ScalarEquals(*v, *f.value)) return false;
    }
    if (!plan_.sort_field.empty()) sort_value = SortValue::From(FindMember(doc, plan_.sort_field));
    return true;
  }

 private:
  const QueryPlan& plan_;
  rapidjson::MemoryPoolAllocator<> allocator_;
};

CursorPosition PositionOf(const Candidate& c) { return {c.sort_value, c.row.ksid, c.row.id}; }

// Counts a page's stored bytes against the plan's bound.
class PageBytes {
 public:
  explicit PageBytes(size_t max) : max_(max) {}
  bool Add(const EntityRecord& row) {
    bytes_ += row.value.size() + 1;  // +1: the comma between items
    return max_ == 0 || bytes_ <= max_;
  }
  Status TooLarge() const {
    return Status::Invalid(
        fmt::format("q.limit$: the page's items exceed max_reply_bytes ({} bytes); ask for fewer "
                    "with q.limit$ and follow each reply's cursor",
                    max_),
        fmt::format(R"({{"field":"q.limit$","max_reply_bytes":{}}})", max_));
  }

 private:
  const size_t max_;
  size_t bytes_ = 0;
};

// Key order, ascending: scan from the cursor and stop after the page.
Result<Selection> SelectInKeyOrder(Backend& backend, const QueryPlan& plan, int64_t now_ms) {
  ScanSpec spec{plan.kind, {}, std::nullopt};
  if (plan.after) spec.after = std::make_pair(plan.after->ksid, plan.after->id);
  Selection out;
  RowMatcher matcher(plan);
  size_t skipped = 0;
  bool more = false;
  bool too_large = false;
  PageBytes bytes(plan.max_page_bytes);
  Status s = backend.Scan(spec, [&](EntityRecord&& row) {
    std::optional<SortValue> unused;
    if (Expired(row, now_ms) || !matcher.Matches(row, unused)) return true;
    if (skipped < plan.skip) {
      ++skipped;
      return true;
    }
    if (plan.limit && out.rows.size() == *plan.limit) {
      more = true;
      return false;
    }
    if (!bytes.Add(row)) {
      too_large = true;
      return false;
    }
    out.rows.push_back(std::move(row));
    return true;
  });
  if (!s.ok()) return s;
  if (too_large) return bytes.TooLarge();
  if (more && !out.rows.empty()) {
    const EntityRecord& last = out.rows.back();
    out.next_cursor = EncodeCursor(plan.fingerprint, {std::nullopt, last.ksid, last.id});
  }
  return out;
}

// Sorted by a field (or descending): read the kind and keep, of what follows the cursor, the first
// skip + limit + 1 in order (a heap whose top is the last kept), so memory is bounded by the page
// and its skip, not by the kind. The extra one tells whether more follow.
Result<Selection> SelectSorted(Backend& backend, const QueryPlan& plan, int64_t now_ms) {
  const int direction = plan.descending ? -1 : 1;
  auto before = [direction](const Candidate& a, const Candidate& b) {
    return direction * CompareCandidates(a.sort_value, a.row.ksid, a.row.id, b.sort_value,
                                         b.row.ksid, b.row.id) <
           0;
  };
  const size_t keep = plan.limit ? plan.skip + *plan.limit + 1 : SIZE_MAX;
  std::vector<Candidate> heap;
  RowMatcher matcher(plan);
  Status s = backend.Scan({plan.kind, {}, std::nullopt}, [&](EntityRecord&& row) {
    Candidate c;
    if (Expired(row, now_ms) || !matcher.Matches(row, c.sort_value)) return true;
    if (plan.after) {
      const CursorPosition& a = *plan.after;
      if (direction *
              CompareCandidates(c.sort_value, row.ksid, row.id, a.sort_value, a.ksid, a.id) <=
          0) {
        return true;
      }
    }
    c.row = std::move(row);
    if (heap.size() == keep) {
      if (!before(c, heap.front())) return true;
      std::pop_heap(heap.begin(), heap.end(), before);
      heap.pop_back();
    }
    heap.push_back(std::move(c));
    std::push_heap(heap.begin(), heap.end(), before);
    return true;
  });
  if (!s.ok()) return s;
  std::sort_heap(heap.begin(), heap.end(), before);

  const size_t begin = std::min(plan.skip, heap.size());
  size_t end = heap.size();
  if (plan.limit) end = std::min(end, begin + *plan.limit);
  Selection out;
  if (end < heap.size() && end > begin) {
    out.next_cursor = EncodeCursor(plan.fingerprint, PositionOf(heap[end - 1]));
  }
  PageBytes bytes(plan.max_page_bytes);
  for (size_t i = begin; i < end; ++i) {
    if (!bytes.Add(heap[i].row)) return bytes.TooLarge();
    out.rows.push_back(std::move(heap[i].row));
  }
  return out;
}

}  // namespace

Result<QueryPlan> PlanQuery(const Query& query) {
  QueryPlan plan;
  if (Status s = CheckKind(query.kind); !s.ok()) return s;
  plan.kind = query.kind;
  for (const Filter& f : query.filters) {
    if (f.field.empty())
      return Status::InvalidField("filters", "a filter's field name must not be empty");
    auto value = std::make_unique<rapidjson::Document>();
    if (Status s = ParseJson(f.value_json, f.field, *value); !s.ok()) return s;
    if (!IsScalar(*value)) {
      return Status::InvalidField(
          f.field, "filter value must be a JSON scalar (string, number, bool or null)");
    }
    plan.filters.push_back({f.field, std::move(value)});
  }
  plan.sort_field = query.sort_field;
  if (query.sort_direction == "desc") {
    plan.descending = true;
  } else if (!query.sort_direction.empty() && query.sort_direction != "asc") {
    return Status::InvalidField(
        "sort_direction", "must be \"asc\" or \"desc\", not \"" + query.sort_direction + "\"");
  }
  if (query.limit) {
    if (*query.limit < 0) return Status::InvalidField("limit", "must not be negative");
    plan.limit = static_cast<size_t>(*query.limit);
  }
  if (query.skip < 0) return Status::InvalidField("skip", "must not be negative");
  plan.skip = static_cast<size_t>(query.skip);
  plan.max_page_bytes = query.max_page_bytes;
  plan.fields = query.fields;
  plan.fingerprint = Fingerprint(plan);
  if (!query.cursor.empty()) {
    Result<CursorPosition> position = DecodeCursor(query.cursor, plan.fingerprint);
    if (!position.ok()) return position.status();
    if (position->sort_value.has_value() != !plan.sort_field.empty()) {
      return Status::InvalidField("cursor",
                                  "belongs to another query (kind, filters or sort changed)");
    }
    plan.after = std::move(position).value();
  }
  return plan;
}

Result<Selection> SelectRows(Backend& backend, const QueryPlan& plan, int64_t now_ms) {
  if (plan.limit && *plan.limit == 0) return Selection{};
  if (plan.sort_field.empty() && !plan.descending) return SelectInKeyOrder(backend, plan, now_ms);
  return SelectSorted(backend, plan, now_ms);
}

}  // namespace shardkit::store::internal
