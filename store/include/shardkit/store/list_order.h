// ListOrder: the order EntityStore::List returns entities in, and its cursors, for code that
// merges the pages of several stores (the shard router's scatter/gather).
//
// Every store orders a query's items the same way — by (sort value, ksid, id), or (ksid, id)
// without a sort field, reversed for "desc" — and a cursor names a position in that order, not an
// offset. So the merge of several stores' pages in this order is the page one store holding all
// the data would have returned, and a cursor made here is accepted by every store for the same
// query.
//
// Thread-safety: an immutable value; Compare/KeyOf/CursorAfter/Project may run concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <shardkit/message/status.h>
#include <shardkit/store/query.h>

namespace shardkit::store {

class ListOrder {
 public:
  // A position in list order (opaque).
  class Key;

  // The order of `query` for a kind whose shard key is `shard_key_field` ("id" or a field name).
  // `invalid` naming the field for a malformed query (as List would answer).
  static Result<ListOrder> Make(const Query& query, std::string shard_key_field);
  ~ListOrder();
  ListOrder(ListOrder&&) noexcept;
  ListOrder& operator=(ListOrder&&) noexcept;

  // The position of a whole (unprojected) entity as a store returns it.
  Result<std::shared_ptr<const Key>> KeyOf(std::string_view entity_json) const;
  // <0 when `a` comes first, 0 for the same position, >0 otherwise.
  int Compare(const Key& a, const Key& b) const;
  // The cursor a store would return for a page ending at `key`.
  std::string CursorAfter(const Key& key) const;
  // Applies the query's `fields` projection ("id" and "version" are always kept).
  Result<std::string> Project(std::string_view entity_json) const;

  // The query's skip, limit and fields, as validated.
  size_t skip() const;
  std::optional<size_t> limit() const;
  bool projects() const;

 private:
  struct Plan;
  explicit ListOrder(std::unique_ptr<Plan> plan);
  std::unique_ptr<Plan> plan_;
};

}  // namespace shardkit::store
