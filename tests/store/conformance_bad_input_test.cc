// Conformance: every kind of bad input is `invalid`, names the field, and writes nothing.
#include <functional>

#include "store_test_util.h"

namespace shardkit::store::testing {
namespace {

TYPED_TEST_SUITE(store_conformance, StoreBackends, BackendName);

struct BadInput {
  std::string name;
  std::string field;  // the message must start with "<field>:"
  std::function<Status(EntityStore&)> call;
};

Status SaveStatus(EntityStore& s, SaveRequest r) {
  Result<std::string> saved = s.Save(r);
  return saved.ok() ? Status::Ok() : saved.status();
}
Status ListStatus(EntityStore& s, Query q) {
  Result<ListPage> page = s.List(q);
  return page.ok() ? Status::Ok() : page.status();
}
Status RemoveWhereStatus(EntityStore& s, Query q) {
  auto removed = s.RemoveWhere(q);
  return removed.ok() ? Status::Ok() : removed.status();
}
SaveRequest Save(std::string kind, std::string id, std::string ent) {
  return {std::move(kind), std::move(id), std::move(ent), std::nullopt, false, std::nullopt};
}

std::vector<BadInput> BadInputs(const std::string& valid_cursor) {
  const std::string nul_kind("th\0ng", 5), nul_id("i\0d", 3);
  std::string big = R"({"blob":")" + std::string(2000, 'x') + R"("})";
  SaveRequest ttl = Save("thing", "t", "{}");
  ttl.ttl_seconds = 0;
  std::string tampered = valid_cursor;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'a' ? 'b' : 'a';
  return {
      {"empty kind", "kind", [](EntityStore& s) { return SaveStatus(s, Save("", "a", "{}")); }},
      {"kind with NUL", "kind",
       [=](EntityStore& s) { return SaveStatus(s, Save(nul_kind, "a", "{}")); }},
      {"entity not an object", "ent",
       [](EntityStore& s) { return SaveStatus(s, Save("thing", "a", "[1,2]")); }},
      {"entity a string", "ent",
       [](EntityStore& s) { return SaveStatus(s, Save("thing", "a", R"("x")")); }},
      {"malformed entity", "ent",
       [](EntityStore& s) { return SaveStatus(s, Save("thing", "a", R"({"a":})")); }},
      {"trailing garbage", "ent",
       [](EntityStore& s) { return SaveStatus(s, Save("thing", "a", "{} x")); }},
      {"empty entity text", "ent",
       [](EntityStore& s) { return SaveStatus(s, Save("thing", "a", "")); }},
      {"invalid UTF-8", "ent",
       [](EntityStore& s) { return SaveStatus(s, Save("thing", "a", "{\"a\":\"\xff\"}")); }},
      {"id with NUL", "id",
       [=](EntityStore& s) { return SaveStatus(s, Save("thing", nul_id, "{}")); }},
      {"entity id empty", "id",
       [](EntityStore& s) { return SaveStatus(s, Save("thing", "", R"({"id":""})")); }},
      {"entity id a number", "id",
       [](EntityStore& s) { return SaveStatus(s, Save("thing", "", R"({"id":7})")); }},
      {"ids disagree", "id",
       [](EntityStore& s) { return SaveStatus(s, Save("thing", "a", R"({"id":"b"})")); }},
      {"value too large", "ent",
       [=](EntityStore& s) { return SaveStatus(s, Save("thing", "a", big)); }},
      {"ttl not positive", "ttl", [=](EntityStore& s) { return SaveStatus(s, ttl); }},
      {"batch item", "ent",
       [](EntityStore& s) { return s.SaveBatch({Save("thing", "a", "nope")})[0].status(); }},
      {"load empty id", "id", [](EntityStore& s) { return s.Load("thing", "").status(); }},
      {"load empty kind", "kind", [](EntityStore& s) { return s.Load("", "a").status(); }},
      {"remove id with NUL", "id",
       [=](EntityStore& s) { return s.Remove("thing", nul_id).status(); }},
      {"negative limit", "limit",
       [](EntityStore& s) { return ListStatus(s, {.kind = "thing", .limit = -1}); }},
      {"negative skip", "skip",
       [](EntityStore& s) { return ListStatus(s, {.kind = "thing", .skip = -3}); }},
      {"unknown direction", "sort_direction",
       [](EntityStore& s) {
         return ListStatus(s, {.kind = "thing", .sort_field = "n", .sort_direction = "up"});
       }},
      {"cursor not hex", "cursor",
       [](EntityStore& s) { return ListStatus(s, {.kind = "thing", .cursor = "zz!"}); }},
      {"cursor truncated", "cursor",
       [=](EntityStore& s) {
         return ListStatus(s, {.kind = "thing", .limit = 1, .cursor = valid_cursor.substr(0, 20)});
       }},
      {"cursor tampered", "cursor",
       [=](EntityStore& s) {
         return ListStatus(s, {.kind = "thing", .limit = 1, .cursor = tampered});
       }},
      {"cursor of another query", "cursor",
       [=](EntityStore& s) {
         return ListStatus(s, {.kind = "thing", .sort_field = "n", .cursor = valid_cursor});
       }},
      {"filter value an object", "user",
       [](EntityStore& s) {
         return ListStatus(s, {.kind = "thing", .filters = {{"user", R"({"a":1})"}}});
       }},
      {"filter value an array", "user",
       [](EntityStore& s) {
         return RemoveWhereStatus(s, {.kind = "thing", .filters = {{"user", "[1]"}}});
       }},
      {"filter value malformed", "user",
       [](EntityStore& s) {
         return ListStatus(s, {.kind = "thing", .filters = {{"user", "alice"}}});
       }},
      {"list empty kind", "kind", [](EntityStore& s) { return ListStatus(s, {.kind = ""}); }},
      {"scan kind with NUL", "kind",
       [=](EntityStore& s) {
         return s.ScanRange(nul_kind, {}, [](const EntityRecord&) { return true; });
       }},
      {"read changes from 0", "from",
       [](EntityStore& s) { return s.feed().ReadChanges(0, 10).status(); }},
      {"consumer without name", "name",
       [](EntityStore& s) { return s.feed().RegisterConsumer("", 1); }},
  };
}

TYPED_TEST(store_conformance, BadInputIsInvalidNamesTheFieldAndWritesNothing) {
  this->options_.max_value_bytes = 1000;
  this->store_.reset();
  this->Open();
  this->MustSave("thing", R"({"n":1})", "a");
  this->MustSave("thing", R"({"n":2})", "b");
  Result<ListPage> first = this->store().List({.kind = "thing", .limit = 1});
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next_cursor.empty());
  const uint64_t before = this->feed().LastSequence();
  const std::string a = *this->store().Load("thing", "a");

  for (const BadInput& bad : BadInputs(first->next_cursor)) {
    Status s = bad.call(this->store());
    EXPECT_EQ(s.code(), Code::kInvalid) << bad.name << ": " << s.ToString();
    EXPECT_EQ(s.message().rfind(bad.field + ":", 0), 0u) << bad.name << ": " << s.message();
    EXPECT_NE(s.details_json().find("\"field\""), std::string::npos) << bad.name;
    EXPECT_EQ(this->feed().LastSequence(), before) << bad.name;
  }
  EXPECT_EQ(*this->store().Load("thing", "a"), a);
  EXPECT_EQ(this->store().List({.kind = "thing"})->items.size(), 2u);
}

}  // namespace
}  // namespace shardkit::store::testing
