// The timeline service's tests, written only with shardkit::testing: mocked store messages first,
// then a fixture store, then a sharded, cached, fault-injected cluster.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <shardkit/testing/testing.h>
#include <timeline/timeline_service.h>

namespace {

using ::testing::HasSubstr;
using namespace shardkit;           // NOLINT: Bus, Message, Code
using namespace shardkit::testing;  // NOLINT: the helpers under test

// --- 1. A mock for every message the service sends -------------------------------------------

class TimelineWithMocks : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(bus.Add("timeline:*", timeline::MakeTimelineService({&clock})).ok());
  }

  ManualClock clock{1'700'000'000'000};
  Bus bus;
  MockResponder store{bus};
  MessageCapture sent{bus};
};

TEST_F(TimelineWithMocks, PostSavesTheEntryAndAnnouncesIt) {
  store.On("store:save,kind:entry")
      .Reply(R"({"ent":{"id":"7","user":"ann","text":"hi"}})")
      .Times(1);

  auto reply = bus.ActAndWait(Msg(R"({"timeline":"post","user":"ann","text":"hi"})"));

  EXPECT_THAT(reply, IsOkReply(HasField("id", "7")));
  EXPECT_THAT(sent,
              SentMessage("store:save,kind:entry", HasField("ent.text", "hi"),
                          HasField("ent.user", "ann"), HasField("ent.at", 1'700'000'000'000)));
  EXPECT_THAT(sent, SentInOrder(MessageLike("store:save,kind:entry"),
                                MessageLike("info:entry,user:ann", HasField("id", "7"))));
}

TEST_F(TimelineWithMocks, AnEmptyPostIsRefusedAndNothingIsSaved) {
  store.On("store:save").Reply("{}").Times(0);

  EXPECT_THAT(bus.ActAndWait(Msg("timeline:post,user:ann")),
              IsErrorReply(Code::kInvalid, HasSubstr("text")));
  EXPECT_THAT(sent, SentCount("store:save", 0));
}

TEST_F(TimelineWithMocks, AStoreFailureReachesTheCallerAndNothingIsAnnounced) {
  store.On("store:save,kind:entry").ReplyError(Code::kUnavailable, "disk on fire");

  EXPECT_THAT(bus.ActAndWait(Msg("timeline:post,user:ann,text:hi")),
              IsErrorReply(Code::kUnavailable));
  EXPECT_THAT(sent, SentCount("info:entry", 0));
}

TEST_F(TimelineWithMocks, ListAsksTheStoreForTheUsersNewestEntries) {
  store.On("store:list,kind:entry").Reply([](const Message& request) -> Result<Message> {
    return Msg(R"({"items":[{"id":"2","text":"second"},{"id":"1","text":"first"}]})");
  });

  auto reply = bus.ActAndWait(Msg(R"({"timeline":"list","user":"ann","limit":2})"));

  EXPECT_THAT(reply, IsOkReply(HasField("items.0.text", "second"), HasField("items.1.id", "1")));
  EXPECT_THAT(sent, SentMessage("store:list,kind:entry", HasField("q.user", "ann"),
                                HasField("q.limit$", 2), HasField("q.sort$.at", -1)));
}

TEST(TimelineDelays, APostWaitsForASlowStoreWithoutSleeping) {
  ManualScheduler scheduler;
  Bus bus;
  ASSERT_TRUE(bus.Add("timeline:*", timeline::MakeTimelineService()).ok());
  MockResponder store(bus, {.scheduler = &scheduler});
  store.On("store:save").Reply(R"({"ent":{"id":"1"}})").Delay(250);

  PendingReply reply = Send(bus, Msg("timeline:post,user:ann,text:hi"));
  scheduler.Advance(249);
  EXPECT_FALSE(reply.ready());
  scheduler.Advance(1);
  EXPECT_THAT(reply.get(), IsOkReply(HasField("id", "1")));
}

// --- 2. A real store, preloaded from fixtures ------------------------------------------------

TEST(TimelineWithFixtures, ListReturnsOnlyTheUsersEntriesNewestFirst) {
  Bus bus;
  ASSERT_TRUE(bus.Add("timeline:*", timeline::MakeTimelineService()).ok());
  auto store = FixtureStore::FromJson(R"({"entry":[
      {"id":"1","user":"ann","text":"old","at":1},
      {"id":"2","user":"bob","text":"not ann's","at":2},
      {"id":"3","user":"ann","text":"new","at":3}]})");
  ASSERT_TRUE(store.Register(bus).ok());

  auto reply = bus.ActAndWait(Msg("timeline:list,user:ann"));

  EXPECT_THAT(reply, IsOkReply(HasField("items.0.text", "new"), HasField("items.1.text", "old"),
                               ::testing::Not(HasField("items.2"))));
}

TEST(TimelineWithFixtures, PostStoresTheEntry) {
  Bus bus;
  ASSERT_TRUE(bus.Add("timeline:*", timeline::MakeTimelineService()).ok());
  FixtureStore store;
  ASSERT_TRUE(store.Register(bus, "store:*,kind:entry").ok());

  auto reply = bus.ActAndWait(Msg("timeline:post,user:ann,text:hello"));

  ASSERT_THAT(reply, IsOkReply(HasField("id")));
  auto id = reply->GetString("id");
  ASSERT_TRUE(id.has_value());
  EXPECT_THAT(store.Get("entry", *id), ::testing::Optional(HasSubstr(R"("text":"hello")")));
}

// --- 3. A sharded, cached cluster with faults ------------------------------------------------

ClusterOptions TwoNodes() {
  ClusterOptions options;
  options.nodes = 2;
  options.ranges = {"-80", "80-"};
  options.shard_keys = {{"entry", "user"}};  // a user's timeline lives on one shard
  options.cached_kinds = {"entry"};
  return options;
}

TEST(TimelineInACluster, PostsFromAnyNodeAreListedFromAnyOther) {
  Cluster cluster(TwoNodes());
  for (size_t i = 0; i < cluster.size(); ++i) {
    ASSERT_TRUE(
        cluster.node(i).Add("timeline:*", timeline::MakeTimelineService({&cluster.clock()})).ok());
  }
  ASSERT_THAT(cluster.Act(0, "timeline:post,user:ann,text:one"), IsOkReply());
  cluster.clock().Advance(1);
  ASSERT_THAT(cluster.Act(1, "timeline:post,user:ann,text:two"), IsOkReply());

  EXPECT_THAT(cluster.Act(1, "timeline:list,user:ann"),
              IsOkReply(HasField("items.0.text", "two"), HasField("items.1.text", "one")));
}

TEST(TimelineInACluster, ALostSaveIsReportedAsATimeoutAndNothingIsAnnounced) {
  Cluster cluster(TwoNodes());
  ASSERT_TRUE(
      cluster.node(0).Add("timeline:*", timeline::MakeTimelineService({&cluster.clock()})).ok());
  MessageCapture sent(cluster.node(0).bus());
  cluster.faults().On("shard:*", "store:save").Drop().Times(1);

  EXPECT_THAT(cluster.Act(0, "timeline:post,user:ann,text:lost"), IsErrorReply(Code::kTimeout));
  EXPECT_THAT(sent, SentCount("info:entry", 0));
  EXPECT_THAT(cluster.Act(0, "timeline:post,user:ann,text:kept"), IsOkReply());
  EXPECT_THAT(sent, SentCount("info:entry", 1));
}

}  // namespace
