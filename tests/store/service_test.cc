// The store:* message protocol, run against every backend through a real Bus: each message of the
// protocol, bulk partial failure, and every bad-input case (invalid, field named, nothing written,
// the service keeps serving). Each case runs on one store, and for the persistent engines also
// through a shard router over two shards (service_fixture.h): a promise must hold both ways.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <future>

#include "service_fixture.h"

namespace shardkit::store::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TYPED_TEST_SUITE(store_service, StoreServiceTopologies, TopologyName);

TYPED_TEST(store_service, AMessageWithAnIdempotencyKeyIsAppliedOnceAcrossCopies) {
  const char* save =
      R"({"store":"save","kind":"k","ent":{"n":1},"meta$":{"idempotency_key":"abc"}})";
  Message first = this->MustAct(save);
  Message copy = this->MustAct(save);
  EXPECT_EQ(this->Ent(copy), this->Ent(first)) << "a generated id must not give two entities";
  auto listed = this->MustAct(R"({"store":"list","kind":"k"})");
  EXPECT_EQ(
      std::count(listed.GetArrayJson("items")->begin(), listed.GetArrayJson("items")->end(), '{'),
      1);
  // A key that is not a string is refused by the codec, naming it.
  auto bad = ParseMessage(R"({"store":"save","kind":"k","ent":{},"meta$":{"idempotency_key":1}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("meta$.idempotency_key: must be a string"));
  this->ExpectRefused(
      fmt::format(R"({{"store":"save","kind":"k","ent":{{}},"meta$":{{"idempotency_key":"{}"}}}})",
                  std::string(300, 'x')),
      "meta$.idempotency_key");
  // A batch under a key used by another request: one request-level conflict, nothing written
  // (through a router too: the key is claimed on its home shard before any shard writes). The
  // batch's items would go to both shards of a routed topology.
  uint64_t before = this->Written();
  auto batch = this->Act(
      R"({"store":"save","kind":"k","ents":[{"n":2},{"n":3}],"meta$":{"idempotency_key":"abc"}})");
  EXPECT_EQ(this->Written(), before) << "written under a key used for another request";
  ASSERT_FALSE(batch.ok()) << ToJson(*batch);
  EXPECT_EQ(batch.status().code(), Code::kConflict);
  EXPECT_THAT(batch.status().message(), StartsWith("meta$.idempotency_key: "));
}

TYPED_TEST(store_service, SaveWithoutIdGeneratesOneAndLoadReturnsIt) {
  Message saved =
      this->MustAct(R"({"store":"save","kind":"entry","ent":{"text":"hi","n":[1,{"a":null}]}})");
  std::string ent = this->Ent(saved);
  std::string id = IdOf(ent);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(VersionOf(ent), 1u);
  Message loaded = this->MustAct(R"({"store":"load","kind":"entry","id":")" + id + R"("})");
  EXPECT_EQ(this->Ent(loaded), ent);
  EXPECT_EQ(Json(ent)["text"].GetString(), std::string("hi"));
}

TYPED_TEST(store_service, SaveWithIdUpsertsAndCountsVersions) {
  this->MustAct(R"({"store":"save","kind":"entry","ent":{"id":"e1","text":"a"}})");
  Message second = this->MustAct(R"({"store":"save","kind":"entry","id":"e1","ent":{"text":"b"}})");
  EXPECT_EQ(VersionOf(this->Ent(second)), 2u);
  EXPECT_EQ(Json(this->Ent(this->MustAct(R"({"store":"load","kind":"entry","id":"e1"})")))["text"]
                .GetString(),
            std::string("b"));
}

TYPED_TEST(store_service, NumericIdsAreTheirDecimalText) {
  this->MustAct(R"({"store":"save","kind":"entry","id":42,"ent":{"text":"a"}})");
  EXPECT_EQ(IdOf(this->Ent(this->MustAct(R"({"store":"load","kind":"entry","id":"42"})"))), "42");
  EXPECT_EQ(IdOf(this->Ent(this->MustAct(R"({"store":"load","kind":"entry","id":42})"))), "42");
}

TYPED_TEST(store_service, ExpectedVersionMismatchIsAConflict) {
  this->MustAct(R"({"store":"save","kind":"entry","ent":{"id":"e1"}})");
  auto r = this->Act(R"({"store":"save","kind":"entry","version":5,"ent":{"id":"e1"}})");
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_TRUE(this->Act(R"({"store":"save","kind":"entry","version":1,"ent":{"id":"e1"}})").ok());
}

TYPED_TEST(store_service, InsertOnlyOnAnExistingIdIsAConflict) {
  this->MustAct(R"({"store":"save","kind":"entry","ent":{"id":"e1"}})");
  auto r = this->Act(R"({"store":"save","kind":"entry","insert_only":true,"ent":{"id":"e1"}})");
  EXPECT_EQ(r.status().code(), Code::kConflict);
}

TYPED_TEST(store_service, LoadOfAMissingIdIsNotFound) {
  EXPECT_EQ(this->Act(R"({"store":"load","kind":"entry","id":"nope"})").status().code(),
            Code::kNotFound);
}

TYPED_TEST(store_service, ListFiltersSortsPagesAndProjects) {
  for (int i = 0; i < 7; ++i) {
    this->MustAct(
        fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"e{}","user":"{}","n":{}}}}})",
                    i, i % 2 ? "bob" : "ann", 10 - i));
  }
  // Routed, the entities are spread over both shards, so the pages are merged by the router.
  for (const auto& store : this->stores_) EXPECT_GT(store->feed().LastSequence(), 0u);
  Message page = this->MustAct(
      R"({"store":"list","kind":"entry","q":{"user":"ann","sort$":{"n":1},"limit$":2,"fields$":["n"]}})");
  auto items = Json(*page.GetArrayJson("items"));
  ASSERT_EQ(items.Size(), 2u);
  EXPECT_EQ(items[0]["n"].GetInt(), 4);
  EXPECT_EQ(items[1]["n"].GetInt(), 6);
  EXPECT_FALSE(items[0].HasMember("user"));
  ASSERT_TRUE(page.GetString("cursor").has_value());
  Message next = this->MustAct(fmt::format(
      R"({{"store":"list","kind":"entry","q":{{"user":"ann","sort$":{{"n":1}},"limit$":2,"fields$":["n"],"cursor$":"{}"}}}})",
      *page.GetString("cursor")));
  auto rest = Json(*next.GetArrayJson("items"));
  ASSERT_EQ(rest.Size(), 2u);
  EXPECT_EQ(rest[0]["n"].GetInt(), 8);
  EXPECT_EQ(rest[1]["n"].GetInt(), 10);
  EXPECT_FALSE(next.Has("cursor"));
  Message skipped =
      this->MustAct(R"({"store":"list","kind":"entry","q":{"sort$":{"n":"desc"},"skip$":5}})");
  EXPECT_EQ(Json(*skipped.GetArrayJson("items")).Size(), 2u);
}

TYPED_TEST(store_service, RemoveByIdAndByQueryWithAll) {
  for (int i = 0; i < 4; ++i) {
    this->MustAct(
        fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"e{}","user":"{}"}}}})", i,
                    i < 3 ? "ann" : "bob"));
  }
  Message removed = this->MustAct(R"({"store":"remove","kind":"entry","id":"e0"})");
  EXPECT_EQ(IdOf(this->Ent(removed)), "e0");
  EXPECT_EQ(this->Act(R"({"store":"remove","kind":"entry","id":"e0"})").status().code(),
            Code::kNotFound);
  this->ExpectRefused(R"({"store":"remove","kind":"entry","q":{"user":"ann"}})", "all");
  Message by_query =
      this->MustAct(R"({"store":"remove","kind":"entry","q":{"user":"ann"},"all":true})");
  EXPECT_EQ(by_query.GetUint("count"), 2u);
  Message left = this->MustAct(R"({"store":"list","kind":"entry"})");
  EXPECT_EQ(Json(*left.GetArrayJson("items")).Size(), 1u);
}

TYPED_TEST(store_service, BulkSaveFailsOnlyTheBadItemsAndWritesTheRestInOneBatch) {
  uint64_t before = this->Written();
  Message reply = this->MustAct(
      R"({"store":"save","kind":"entry","ents":[{"id":"a","x":1},"not an object",{"id":"b","x":2},{"id":7}]})");
  auto items = Json(*reply.GetArrayJson("items"));
  ASSERT_EQ(items.Size(), 4u);
  EXPECT_TRUE(items[0].HasMember("ent"));
  ASSERT_TRUE(items[1].HasMember("error$"));
  EXPECT_EQ(std::string(items[1]["error$"]["code"].GetString()), "invalid");
  EXPECT_THAT(items[1]["error$"]["message"].GetString(), StartsWith("ents[1]: "));
  EXPECT_TRUE(items[2].HasMember("ent"));
  EXPECT_TRUE(items[3].HasMember("error$"));  // an id inside ent must be a string
  EXPECT_EQ(this->Written(), before + 2);
}

TYPED_TEST(store_service, BulkLoadAnswersPerItem) {
  this->MustAct(R"({"store":"save","kind":"entry","ent":{"id":"a"}})");
  Message reply = this->MustAct(R"({"store":"load","kind":"entry","ids":["a","missing",true]})");
  auto items = Json(*reply.GetArrayJson("items"));
  ASSERT_EQ(items.Size(), 3u);
  EXPECT_EQ(std::string(items[0]["ent"]["id"].GetString()), "a");
  EXPECT_EQ(std::string(items[1]["error$"]["code"].GetString()), "not_found");
  EXPECT_EQ(std::string(items[2]["error$"]["code"].GetString()), "invalid");
}

TYPED_TEST(store_service, TtlExpiresEntities) {
  this->MustAct(R"({"store":"save","kind":"entry","ttl":10,"ent":{"id":"t"}})");
  EXPECT_TRUE(this->Act(R"({"store":"load","kind":"entry","id":"t"})").ok());
  this->clock_.Advance(10'001);
  EXPECT_EQ(this->Act(R"({"store":"load","kind":"entry","id":"t"})").status().code(),
            Code::kNotFound);
}

TYPED_TEST(store_service, ChangesReadTheFeedInOrder) {
  this->MustAct(R"({"store":"save","kind":"entry","ent":{"id":"a","v":1}})");
  this->MustAct(R"({"store":"remove","kind":"entry","id":"a"})");
  Message reply = this->MustAct(this->Changes(R"("from":1,"limit":10)"));
  auto changes = Json(*reply.GetArrayJson("changes"));
  ASSERT_EQ(changes.Size(), 2u);
  EXPECT_EQ(changes[0]["seq"].GetUint64(), 1u);
  EXPECT_EQ(std::string(changes[0]["op"].GetString()), "save");
  EXPECT_EQ(changes[0]["ent"]["v"].GetInt(), 1);
  EXPECT_EQ(std::string(changes[1]["op"].GetString()), "remove");
  EXPECT_FALSE(changes[1].HasMember("ent"));
  EXPECT_EQ(std::string(changes[1]["ksid"].GetString()).size(), 16u);
  EXPECT_EQ(reply.GetUint("last"), 2u);
}

TYPED_TEST(store_service, BadInputIsRefusedNamingTheField) {
  this->ExpectRefused(R"({"store":"save","ent":{"a":1}})", "kind");
  this->ExpectRefused(R"({"store":"save","kind":7,"ent":{"a":1}})", "kind");
  this->ExpectRefused(R"({"store":"save","kind":"entry","ent":[1]})", "ent");
  this->ExpectRefused(R"({"store":"save","kind":"entry","ent":"text"})", "ent");
  this->ExpectRefused(R"({"store":"save","kind":"entry"})", "ent");
  this->ExpectRefused(R"({"store":"save","kind":"entry","id":true,"ent":{}})", "id");
  this->ExpectRefused(R"({"store":"save","kind":"entry","id":-3,"ent":{}})", "id");
  this->ExpectRefused(R"({"store":"load","kind":"entry","id":{"x":1}})", "id");
  this->ExpectRefused(R"({"store":"load","kind":"entry"})", "id");
  this->ExpectRefused(R"({"store":"list","kind":"entry","q":{"n":{"$gt":3}}})", "q.n");
  this->ExpectRefused(R"({"store":"list","kind":"entry","q":{"where$":1}})", "q.where$");
  this->ExpectRefused(R"({"store":"list","kind":"entry","q":{"limit$":-1}})", "q.limit$");
  this->ExpectRefused(R"({"store":"list","kind":"entry","q":{"cursor$":"%%%not-a-cursor"}})",
                      "cursor");
  this->ExpectRefused(R"({"store":"list","kind":"entry","q":"all"})", "q");
  this->ExpectRefused(
      R"({"store":"save","kind":"entry","ent":{"blob":")" + std::string(5000, 'x') + R"("}})",
      "ent");
  this->ExpectRefused("{\"store\":\"save\",\"kind\":\"en\\u0000try\",\"ent\":{}}", "kind");
  this->ExpectRefused(R"({"store":"save","kind":"entry","ttl":0,"ent":{}})", "ttl");
  this->ExpectRefused(R"({"store":"save","kind":"entry","version":"1","ent":{}})", "version");
  this->ExpectRefused(R"({"store":"frobnicate","kind":"entry"})", "store");
  this->ExpectRefused(R"({"store":"claim","kind":"entry","meta$":{"idempotency_key":"k"}})",
                      "request");
  this->ExpectRefused(R"({"store":"claim","kind":"entry","request":"r"})", "meta$.idempotency_key");
  this->ExpectRefused(this->Changes(R"("from":0)"), "from");
  this->ExpectRefused(this->Changes(R"("from":1,"wait_ms":-1)"), "wait_ms");
  this->ExpectRefused(this->Changes(R"("from":1,"wait_ms":"100")"), "wait_ms");
  this->ExpectRefused(this->Changes(R"("from":1,"wait_ms":2.5)"), "wait_ms");
  this->ExpectRefused(this->Changes(R"("from":1,"wait_ms":600000)"), "wait_ms");
  // Through a router, a feed is one shard's: store:changes must name it.
  if (TypeParam::kRouted) this->ExpectRefused(R"({"store":"changes","from":1})", "shard");
}

// A long-poll store:changes: the reply waits for a record past `from`, and comes as soon as one is
// committed (well before the 10 s wait).
TYPED_TEST(store_service, ChangesWithWaitMsAnswerWhenARecordArrives) {
  this->MustAct(R"({"store":"save","kind":"entry","ent":{"id":"a"}})");
  const std::string b = this->IdNextTo("a", "b");  // routed: the next record of a's feed
  std::promise<Result<Message>> answered;
  auto future = answered.get_future();
  const auto start = std::chrono::steady_clock::now();
  this->bus_.Act(*ParseMessage(this->Changes(R"("from":2,"wait_ms":10000)")),
                 [&](Result<Message> r) { answered.set_value(std::move(r)); });
  ASSERT_EQ(future.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "answered before any record past `from` existed";
  this->MustAct(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}"}}}})", b));
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "no answer 5 s after the record arrived";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
  Result<Message> reply = future.get();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  auto changes = Json(*reply->GetArrayJson("changes"));
  ASSERT_EQ(changes.Size(), 1u);
  EXPECT_EQ(changes[0]["seq"].GetUint64(), 2u);
  EXPECT_EQ(std::string(changes[0]["id"].GetString()), b);
}

// With no record arriving, the long-poll answers after wait_ms with no changes.
TYPED_TEST(store_service, ChangesWithWaitMsAnswerEmptyWhenTheWaitEnds) {
  this->MustAct(R"({"store":"save","kind":"entry","ent":{"id":"a"}})");
  const auto start = std::chrono::steady_clock::now();
  Message reply = this->MustAct(this->Changes(R"("from":2,"wait_ms":300)"));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(290)) << "answered before wait_ms";
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_EQ(Json(*reply.GetArrayJson("changes")).Size(), 0u);
  EXPECT_EQ(reply.GetUint("last"), 1u);
  // With records there already, wait_ms changes nothing: the answer comes at once.
  const auto again = std::chrono::steady_clock::now();
  Message now = this->MustAct(this->Changes(R"("from":1,"wait_ms":10000)"));
  EXPECT_LT(std::chrono::steady_clock::now() - again, std::chrono::seconds(2));
  EXPECT_EQ(Json(*now.GetArrayJson("changes")).Size(), 1u);
}

}  // namespace
}  // namespace shardkit::store::testing
