// Cluster: sharded routing across nodes, the cache, fixtures, and faults on shards and links.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <shardkit/testing/testing.h>

#include "test_util.h"

namespace shardkit::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

ClusterOptions ThreeNodesFourShards() {
  ClusterOptions options;
  options.nodes = 3;
  options.ranges = {"-40", "40-80", "80-c0", "c0-"};
  return options;
}

size_t StoredOn(Cluster& cluster, const std::string& range, const std::string& kind) {
  store::Query query;
  query.kind = kind;
  auto page = cluster.store(range)->List(query);
  return page.ok() ? page->items.size() : 0;
}

TEST(Cluster, ShardsAreSpreadOverTheNodes) {
  Cluster cluster(ThreeNodesFourShards());
  EXPECT_EQ(cluster.OwnerOf("-40"), 0);
  EXPECT_EQ(cluster.OwnerOf("40-80"), 1);
  EXPECT_EQ(cluster.OwnerOf("80-c0"), 2);
  EXPECT_EQ(cluster.OwnerOf("c0-"), 0);
  EXPECT_EQ(cluster.OwnerOf("nope"), -1);
  EXPECT_THAT(cluster.node(0).shards(), ::testing::ElementsAre("-40", "c0-"));
}

TEST(Cluster, AnEntitySavedThroughOneNodeLoadsThroughEveryOther) {
  Cluster cluster(ThreeNodesFourShards());
  for (int i = 0; i < 20; ++i) {
    ASSERT_THAT(cluster.Act(i % 3, Msg(R"({"store":"save","kind":"entry","ent":{"id":")" +
                                       std::to_string(i) + R"("}})")),
                IsOkReply());
  }
  for (int i = 0; i < 20; ++i) {
    for (size_t node = 0; node < cluster.size(); ++node) {
      EXPECT_THAT(cluster.Act(node, "store:load,kind:entry,id:" + std::to_string(i)),
                  IsOkReply(HasField("ent.id", std::to_string(i))));
    }
  }
  size_t total = 0;
  for (const auto& shard : cluster.shard_map()->shards())
    total += StoredOn(cluster, shard.name, "entry");
  EXPECT_EQ(total, 20u);
}

TEST(Cluster, FixturesAreSavedThroughTheRouterAndListsGatherEveryShard) {
  ClusterOptions options = ThreeNodesFourShards();
  options.fixtures =
      R"({"entry":[{"id":"a","n":1},{"id":"b","n":2},{"id":"c","n":3},{"id":"d","n":4},{"id":"e","n":5}]})";
  Cluster cluster(options);
  EXPECT_THAT(cluster.Act(2, R"({"store":"list","kind":"entry","q":{"sort$":{"n":-1}}})"),
              IsOkReply(HasField("items.0.id", "e"), HasField("items.4.id", "a"),
                        ::testing::Not(HasField("items.5"))));
  EXPECT_GT(StoredOn(cluster, "-40", "entry") + StoredOn(cluster, "40-80", "entry"), 0u);
}

TEST(Cluster, TheCacheAnswersRepeatedLoadsWithoutTheShard) {
  ClusterOptions options = ThreeNodesFourShards();
  options.cached_kinds = {"entry"};
  options.fixtures = R"({"entry":[{"id":"x","text":"cached"}]})";
  Cluster cluster(options);
  MessageCapture sent(cluster.node(1).bus());
  EXPECT_THAT(cluster.Act(1, "store:load,kind:entry,id:x"),
              IsOkReply(HasField("ent.text", "cached")));
  EXPECT_THAT(cluster.Act(1, "store:load,kind:entry,id:x"),
              IsOkReply(HasField("ent.text", "cached")));
  EXPECT_EQ(cluster.node(1).cache("entry")->stats().hits, 1u);
  EXPECT_THAT(sent, SentCount("store:load,shard:*", 1));
  EXPECT_EQ(cluster.node(1).cache("user"), nullptr);
}

TEST(Cluster, ADroppedLinkIsATimeoutAfterExactlyTheDropTimeout) {
  Cluster cluster(ThreeNodesFourShards());
  const int64_t start = cluster.clock().NowMs();
  // Every shard that node 0 does not own is behind a link; drop one save on any of them.
  cluster.faults().On("node0->*", "store:save").Drop().Times(1);
  int timeouts = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = cluster.Act(
        0, Msg(R"({"store":"save","kind":"entry","ent":{"id":"k)" + std::to_string(i) + R"("}})"));
    timeouts += !r.ok() && r.status().code() == Code::kTimeout;
  }
  EXPECT_EQ(timeouts, 1);
  EXPECT_EQ(cluster.clock().NowMs() - start, FaultOptions{}.drop_timeout_ms);
}

TEST(Cluster, AnErrorInjectedOnOneShardFailsAScatterNamingTheShard) {
  Cluster cluster(ThreeNodesFourShards());
  cluster.faults().On("shard:80-c0", "store:list").Error(Code::kUnavailable, "disk gone");
  EXPECT_THAT(cluster.Act(0, "store:list,kind:entry"),
              IsErrorReply(Code::kUnavailable, HasSubstr("80-c0")));
  EXPECT_THAT(cluster.Act(0, R"({"store":"list","kind":"entry","partial":true})"),
              IsOkReply(HasField("missing", HasSubstr("80-c0"))));
}

TEST(Cluster, ADuplicatedSaveShowsUpAsAnExtraVersion) {
  Cluster cluster(ThreeNodesFourShards());
  cluster.faults().On("shard:*", "store:save").Duplicate().Times(1);
  ASSERT_THAT(cluster.Act(0, R"({"store":"save","kind":"entry","ent":{"id":"dup"}})"),
              IsOkReply(HasField("ent.version", 1)));
  EXPECT_THAT(cluster.Act(1, "store:load,kind:entry,id:dup"),
              IsOkReply(HasField("ent.version", 2)));
}

TEST(Cluster, DelayedShardsStillAnswerAndTimeMovesOnlyAsFarAsNeeded) {
  Cluster cluster(ThreeNodesFourShards());
  cluster.faults().On("shard:*").Delay(25);
  const int64_t start = cluster.clock().NowMs();
  EXPECT_THAT(cluster.Act(0, "store:list,kind:entry"), IsOkReply(HasField("items", "[]")));
  EXPECT_EQ(cluster.clock().NowMs() - start, 25);  // the four shards answer in parallel
}

TEST(Cluster, ExtraServicesJoinANodeAndTalkToTheStore) {
  ClusterOptions options;
  options.nodes = 2;
  options.ranges = {"-80", "80-"};
  Cluster cluster(options);
  ASSERT_TRUE(
      cluster.node(1)
          .Add("count:entries", MakeHandler([](Message, const Context& context, ReplyFn reply) {
                 context.Act(Msg("store:list,kind:entry"), [reply](Result<Message> page) {
                   if (!page.ok()) return reply(std::move(page));
                   reply(Message().SetString(
                       "listed", std::string(page->GetArrayJson("items").value_or(""))));
                 });
               }))
          .ok());
  ASSERT_THAT(cluster.Act(0, R"({"store":"save","kind":"entry","ent":{"id":"1"}})"), IsOkReply());
  EXPECT_THAT(cluster.Act(1, "count:entries"),
              IsOkReply(HasField("listed", HasSubstr(R"("id":"1")"))));
}

TEST(Cluster, AMessageHeldForeverIsReportedInsteadOfHanging) {
  ClusterOptions options;
  options.faults.reorder_flush_ms = 1'000'000'000;  // effectively never on its own
  Cluster cluster(options);
  cluster.faults().On("shard:*").Reorder(2);
  PendingReply r = cluster.Send(0, Msg("store:load,kind:entry,id:1"));
  EXPECT_FALSE(r.ready());
  // Act drives the scheduler: the flush task eventually releases both held messages.
  EXPECT_THAT(cluster.Act(0, "store:load,kind:entry,id:2"), IsErrorReply(Code::kNotFound));
  EXPECT_TRUE(r.ready());
}

TEST(Cluster, BadOptionsFailTheTest) {
  ClusterOptions options;
  options.ranges = {"-40"};
  auto failures = FailuresOf([&] { Cluster cluster(options); });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("gap after '-40'"));
}

}  // namespace
}  // namespace shardkit::testing
