// Seneca compatibility, the parts that need no Node.js: the entity rules of the seneca-entity
// adapter (services/adapters/seneca_query.h) and the forms the HTTP edge reads and writes for
// Seneca (services/transport/seneca_wire.h). tests/seneca/ runs Seneca itself against real nodes.
#include <gtest/gtest.h>

#include "seneca_query.h"
#include "seneca_wire.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"

namespace shardkit::services {
namespace {

rapidjson::Document Doc(std::string_view text) {
  auto doc = ParseJson(text, "test");
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  return std::move(doc).value();
}

// The ids of `list` after Shape(q), in order.
std::string Ids(rapidjson::Document& all, std::string_view q) {
  std::vector<rapidjson::Value*> list;
  rapidjson::Document query = Doc(q);
  for (auto& ent : all.GetArray()) {
    if (seneca::Matches(ent, query)) list.push_back(&ent);
  }
  seneca::Shape(list, query);
  std::string ids;
  for (auto* ent : list) ids += std::string((*ent)["id"].GetString()) + " ";
  return ids;
}

TEST(SenecaQuery, CanonFromEntityTextObjectOrMessage) {
  Message m;
  auto text = Doc(R"({"entity$":"zen/moon/bar"})");
  EXPECT_EQ(seneca::CanonOf(&text, m).Kind(), "zen/moon/bar");
  auto object = Doc(R"({"entity$":{"name":"bar","base":"moon"}})");
  EXPECT_EQ(seneca::CanonOf(&object, m).Kind(), "moon/bar");
  EXPECT_EQ(seneca::CanonOf(&object, m).Text(), "-/moon/bar");
  auto none = Doc(R"({"entity$":"-/-/-"})");
  m.SetString("name", "foo").SetString("zone", "z");
  EXPECT_EQ(seneca::CanonOf(&none, m).Kind(), "z/-/foo");
}

TEST(SenecaQuery, StoredFormDropsDirectivesKeepsNullsAndRenamesVersion) {
  auto ent = Doc(R"({"entity$":"-/-/foo","id$":"x","merge$":false,"a":null,"version":"v2"})");
  seneca::ToStored(ent, ent.GetAllocator());
  EXPECT_EQ(ToJsonText(ent), R"({"a":null,"version$":"v2"})");
  auto stored = Doc(R"({"id":"x","version":3,"a":null,"version$":"v2"})");
  seneca::ToSeneca(stored, {"", "", "foo"}, stored.GetAllocator());
  EXPECT_EQ(ToJsonText(stored), R"({"id":"x","a":null,"version":"v2","entity$":"-/-/foo"})");
}

TEST(SenecaQuery, MatchingIsStrictEqualityArraysAndOperators) {
  auto all = Doc(R"([{"id":"a","p":1,"s":"x"},{"id":"b","p":2,"s":"y"},{"id":"c","p":"1"},
                     {"id":"d","p":null}])");
  EXPECT_EQ(Ids(all, R"({"p":1})"), "a ");                 // "1" is not 1
  EXPECT_EQ(Ids(all, R"({"p":[2,"1"]})"), "b c ");         // any of
  EXPECT_EQ(Ids(all, R"({"p":null})"), "d ");              // a missing field is not null
  EXPECT_EQ(Ids(all, R"({"p":{"$gte":2}})"), "b ");        // as in JS: "1" is 1 and null is 0
  EXPECT_EQ(Ids(all, R"({"q":{"$gte":2}})"), "a b c d ");  // undefined compares neither way
  EXPECT_EQ(Ids(all, R"({"p":{"$ne":1},"s":"y"})"), "b ");
  EXPECT_EQ(Ids(all, R"({"s":"x","sort$":{"p":1}})"), "a ");
}

TEST(SenecaQuery, SortSkipLimitFieldsWithSenecasLeniency) {
  auto all = Doc(R"([{"id":"a","n":3,"t":1},{"id":"b","n":1,"t":2},{"id":"c","n":2,"t":3}])");
  EXPECT_EQ(Ids(all, R"({"sort$":{"n":1}})"), "b c a ");
  EXPECT_EQ(Ids(all, R"({"sort$":{"n":-1},"skip$":1,"limit$":1})"), "c ");
  EXPECT_EQ(Ids(all, R"({"sort$":{"n":1},"skip$":-1,"limit$":-1})"), "b c a ");
  EXPECT_EQ(Ids(all, R"({"sort$":{"n":1},"skip$":"B","limit$":"A"})"), "b c a ");
  EXPECT_EQ(Ids(all, R"({"limit$":0})"), "a b c ");  // mem-store: 0 is no limit
  Ids(all, R"({"fields$":["n"]})");
  EXPECT_EQ(ToJsonText(all[0]), R"({"id":"a","n":3})");
}

TEST(SenecaWire, TransportGetsTheValueAndErrorsBelow400) {
  Message reply;
  reply.SetArrayJson("seneca$", R"([{"id":"a"}])");
  auto ok = ToSeneca(SenecaCaller::kTransport, reply, "id1");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, R"([{"id":"a"}])");
  auto err = ToSeneca(SenecaCaller::kTransport,
                      Status(Code::kConflict, "id: taken", R"({"field":"id"})"), "id1");
  EXPECT_EQ(err.status, kSenecaTransportErrorStatus);
  EXPECT_EQ(
      err.body,
      R"({"code":"conflict","message":"id: taken","details":{"field":"id"},"statusCode":409})");
}

TEST(SenecaWire, WebTransportGetsMeta) {
  Message null_reply;
  null_reply.SetNull("seneca$");
  EXPECT_EQ(ToSeneca(SenecaCaller::kWeb, null_reply, "m1").body,
            R"({"meta$":{"id":"m1","empty":true}})");
  Message array;
  array.SetArrayJson("seneca$", "[1]");
  EXPECT_EQ(ToSeneca(SenecaCaller::kWeb, array, "m1").body,
            R"({"array$":[1],"meta$":{"id":"m1"}})");
  auto err = ToSeneca(SenecaCaller::kWeb, Status::NotFound("gone"), "m1");
  EXPECT_EQ(err.status, 500);
  EXPECT_EQ(
      err.body,
      R"({"code":"not_found","message":"gone","statusCode":404,"meta$":{"id":"m1","error":true}})");
  std::string id;
  auto body = FromSenecaWeb(
      R"({"cmd":"load","meta$":{"id":"a/b","trace":[],"seneca":"3.38.0","instance":"i"}})", id);
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(*body, R"({"cmd":"load"})");
  EXPECT_EQ(id, "a/b");
  EXPECT_FALSE(FromSenecaWeb(R"({"cmd":"load","meta$":{"id":"x"}})", id).has_value());
}

TEST(SenecaWire, SenecaRepliesToShardkit) {
  auto null_reply = FromSenecaReply(200, "null");
  ASSERT_TRUE(null_reply && null_reply->ok());
  EXPECT_EQ(ToJson(**null_reply), R"({"seneca$":null})");
  auto array = FromSenecaReply(200, "[1,2]");
  ASSERT_TRUE(array && array->ok());
  EXPECT_EQ(ToJson(**array), R"({"seneca$":[1,2]})");
  auto known = FromSenecaReply(500, R"({"code":"conflict","message":"m","details":{"f":1}})");
  ASSERT_TRUE(known && !known->ok());
  EXPECT_EQ(known->status(), Status(Code::kConflict, "m", R"({"f":1})"));
  auto other = FromSenecaReply(500, R"({"code":"widget_jammed","message":"jammed"})");
  ASSERT_TRUE(other && !other->ok());
  EXPECT_EQ(other->status(), Status(Code::kInternal, "jammed", R"({"code":"widget_jammed"})"));
  EXPECT_FALSE(FromSenecaReply(500, R"({"something":"else"})").has_value());
}

}  // namespace
}  // namespace shardkit::services
