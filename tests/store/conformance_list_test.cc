// Conformance: List filters, sorting, skip/limit, projection, cursors; RemoveWhere.
#include <map>
#include <set>

#include "store_test_util.h"

namespace shardkit::store::testing {
namespace {

TYPED_TEST_SUITE(store_conformance, StoreBackends, BackendName);

std::vector<std::string> Ids(const ListPage& page) {
  std::vector<std::string> ids;
  for (const std::string& item : page.items) ids.push_back(IdOf(item));
  return ids;
}

// Saves p0..p(n-1) with n = i, odd = i % 2, and a group.
template <typename Fixture>
void SaveNumbered(Fixture& f, int count) {
  for (int i = 0; i < count; ++i) {
    f.MustSave("p",
               R"({"n":)" + std::to_string(i) + R"(,"odd":)" + (i % 2 ? "true" : "false") +
                   R"(,"group":")" + (i % 3 == 0 ? "x" : "y") + R"("})",
               "p" + std::to_string(i));
  }
}

// Every page of `query`, following cursors.
std::vector<std::string> AllPages(EntityStore& store, Query query, int* pages = nullptr) {
  std::vector<std::string> ids;
  for (int n = 1;; ++n) {
    Result<ListPage> page = store.List(query);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) return ids;
    for (const std::string& item : page->items) ids.push_back(IdOf(item));
    if (page->next_cursor.empty()) {
      if (pages) *pages = n;
      return ids;
    }
    query.cursor = page->next_cursor;
  }
}

TYPED_TEST(store_conformance, ListFiltersOnTopLevelScalars) {
  SaveNumbered(*this, 12);
  this->MustSave("p", R"({"n":1.0,"odd":null,"group":{"nested":"x"}})", "float_one");
  this->MustSave("q", R"({"n":1})", "other_kind");
  auto ids = [&](std::vector<Filter> filters) {
    Result<ListPage> page =
        this->store().List({.kind = "p", .filters = std::move(filters), .sort_field = "n"});
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> out = page.ok() ? Ids(*page) : std::vector<std::string>{};
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(ids({{"n", "1"}}), (std::vector<std::string>{"float_one", "p1"}));  // 1 == 1.0
  EXPECT_EQ(ids({{"group", R"("x")"}, {"odd", "true"}}), (std::vector<std::string>{"p3", "p9"}));
  EXPECT_EQ(ids({{"odd", "null"}}), (std::vector<std::string>{"float_one"}));
  EXPECT_EQ(ids({{"missing", "null"}}), std::vector<std::string>{});  // absent never matches
  EXPECT_EQ(ids({{"n", R"("1")"}}), std::vector<std::string>{});      // types must agree
  EXPECT_EQ(ids({{"id", R"("p4")"}}), std::vector<std::string>{"p4"});
}

TYPED_TEST(store_conformance, ListSortsBothWaysWithSkipAndLimit) {
  SaveNumbered(*this, 10);
  this->MustSave("p", R"({"odd":false})", "no_n");  // missing sorts first
  Result<ListPage> asc =
      this->store().List({.kind = "p", .sort_field = "n", .limit = 4, .skip = 2});
  ASSERT_TRUE(asc.ok());
  EXPECT_EQ(Ids(*asc), (std::vector<std::string>{"p1", "p2", "p3", "p4"}));
  EXPECT_FALSE(asc->next_cursor.empty());
  Result<ListPage> desc =
      this->store().List({.kind = "p", .sort_field = "n", .sort_direction = "desc", .limit = 3});
  ASSERT_TRUE(desc.ok());
  EXPECT_EQ(Ids(*desc), (std::vector<std::string>{"p9", "p8", "p7"}));
  Result<ListPage> tail = this->store().List({.kind = "p", .sort_field = "n", .skip = 9});
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(Ids(*tail), (std::vector<std::string>{"p8", "p9"}));
  EXPECT_TRUE(tail->next_cursor.empty());
  Result<ListPage> none = this->store().List({.kind = "p", .limit = 0});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->items.empty());
  Result<ListPage> by_key = this->store().List({.kind = "p"});
  ASSERT_TRUE(by_key.ok());
  EXPECT_EQ(by_key->items.size(), 11u);
  Result<ListPage> key_desc = this->store().List({.kind = "p", .sort_direction = "desc"});
  ASSERT_TRUE(key_desc.ok());
  std::vector<std::string> forward = Ids(*by_key), backward = Ids(*key_desc);
  std::reverse(backward.begin(), backward.end());
  EXPECT_EQ(forward, backward);
}

TYPED_TEST(store_conformance, ListProjectsFieldsAndKeepsIdAndVersion) {
  this->MustSave("p", R"({"a":1,"b":{"c":2},"d":"x"})", "one");
  Result<ListPage> page = this->store().List({.kind = "p", .fields = {"b", "absent"}});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0], R"({"id":"one","version":1,"b":{"c":2}})");
}

TYPED_TEST(store_conformance, CursorPagingVisitsEveryItemExactlyOnce) {
  SaveNumbered(*this, 23);
  std::vector<std::string> everything = AllPages(this->store(), {.kind = "p"});
  ASSERT_EQ(everything.size(), 23u);
  for (Query query :
       {Query{.kind = "p", .limit = 5}, Query{.kind = "p", .sort_field = "n", .limit = 4},
        Query{.kind = "p", .sort_field = "group", .sort_direction = "desc", .limit = 6},
        Query{.kind = "p", .sort_direction = "desc", .limit = 7},
        Query{.kind = "p", .filters = {{"odd", "true"}}, .sort_field = "n", .limit = 3}}) {
    int pages = 0;
    std::vector<std::string> ids = AllPages(this->store(), query, &pages);
    const size_t expected = query.filters.empty() ? 23u : 11u;
    EXPECT_EQ(ids.size(), expected) << query.sort_field;
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), expected);
    EXPECT_EQ(pages, static_cast<int>((expected + *query.limit - 1) / *query.limit))
        << query.sort_field;
  }
  Result<ListPage> sorted = this->store().List({.kind = "p", .sort_field = "n", .limit = 5});
  ASSERT_TRUE(sorted.ok());
  std::vector<std::string> in_order =
      AllPages(this->store(), {.kind = "p", .sort_field = "n", .limit = 5});
  for (int i = 0; i < 23; ++i) EXPECT_EQ(in_order[i], "p" + std::to_string(i));
}

TYPED_TEST(store_conformance, PagingWhileOthersWriteNeitherSkipsNorRepeatsItems) {
  for (Query query :
       {Query{.kind = "p", .limit = 7}, Query{.kind = "p", .sort_field = "n", .limit = 7},
        Query{.kind = "p", .sort_field = "n", .sort_direction = "desc", .limit = 7}}) {
    ASSERT_TRUE(this->store().RemoveWhere({.kind = "p"}).ok());
    SaveNumbered(*this, 60);
    std::set<std::string> stable;  // exist, unchanged in their sort value, from start to end
    for (int i = 0; i < 60; ++i) stable.insert("p" + std::to_string(i));
    std::map<std::string, int> seen;
    int round = 0;
    for (;;) {
      Result<ListPage> page = this->store().List(query);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      for (const std::string& item : page->items) ++seen[IdOf(item)];
      // Between pages: inserts before and after the position, updates, and removes.
      ++round;
      this->MustSave("p", R"({"n":)" + std::to_string(round * 3 - 100) + "}",
                     "new_low" + std::to_string(round));
      this->MustSave("p", R"({"n":)" + std::to_string(round * 7 + 100) + "}",
                     "new_high" + std::to_string(round));
      const std::string touched = "p" + std::to_string((round * 13) % 60);
      this->MustSave("p", R"({"n":)" + std::to_string((round * 13) % 60) + R"(,"touched":true})",
                     touched);
      const std::string removed = "p" + std::to_string((round * 17 + 5) % 60);
      if (this->store().Remove("p", removed).ok()) stable.erase(removed);
      if (page->next_cursor.empty()) break;
      query.cursor = page->next_cursor;
    }
    query.cursor.clear();
    for (const std::string& id : stable)
      EXPECT_EQ(seen[id], 1) << id << " sort=" << query.sort_field;
    for (const auto& [id, times] : seen) EXPECT_EQ(times, 1) << id;
  }
}

TYPED_TEST(store_conformance, RemoveWhereRemovesEveryMatchInOneWrite) {
  SaveNumbered(*this, 12);
  const uint64_t before = this->feed().LastSequence();
  Result<std::vector<std::string>> removed =
      this->store().RemoveWhere({.kind = "p", .filters = {{"group", R"("x")"}}});
  ASSERT_TRUE(removed.ok());
  std::set<std::string> ids;
  for (const std::string& r : *removed) ids.insert(IdOf(r));
  EXPECT_EQ(ids, (std::set<std::string>{"p0", "p3", "p6", "p9"}));
  EXPECT_EQ(this->feed().LastSequence(), before + 4);
  EXPECT_EQ(this->store().Load("p", "p3").status().code(), Code::kNotFound);
  EXPECT_EQ(this->store().List({.kind = "p"})->items.size(), 8u);
  Result<std::vector<std::string>> limited =
      this->store().RemoveWhere({.kind = "p", .sort_field = "n", .limit = 2});
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ(IdOf((*limited)[0]), "p1");
  EXPECT_EQ(IdOf((*limited)[1]), "p2");
  EXPECT_TRUE(this->store().RemoveWhere({.kind = "nothing"})->empty());
}

}  // namespace
}  // namespace shardkit::store::testing
