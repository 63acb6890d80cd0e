// Projections: the entities read model and a test one (count_per_user.h), read-your-writes waits,
// rebuild and swap, lag, change feeds.
#include <atomic>

#include "cqrs_test_util.h"

namespace shardkit::cqrs::testing {
namespace {

std::string Ids(Message m) { return std::string(m.GetArrayJson("ids").value_or("?")); }

// The `field` of the entity in a store:load reply (empty when it has none).
std::string EntField(const Message& m, const char* field) {
  auto ent = ParseJson(m.GetObjectJson("ent").value_or("{}"), "ent");
  if (!ent.ok() || !ent->HasMember(field) || !(*ent)[field].IsString()) return "";
  return (*ent)[field].GetString();
}

TEST(CqrsProjection, ReadModelsFollowSavesUpdatesAndRemoves) {
  TempDir dir;
  Node node(dir.path());
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"1","user":"ann","text":"hello"}})");
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"2","user":"ann","text":"again"}})");
  const uint64_t head =
      *node.Act(R"({"store":"save","kind":"entry","ent":{"id":"3","user":"bob"}})")
           .GetUint("position");
  const std::string wait = R"(,"min_position":)" + std::to_string(head) + "}";
  Message ann = node.Act(R"({"entries":"user","user":"ann")" + wait);
  EXPECT_EQ(ann.GetUint("count"), 2u);
  EXPECT_EQ(Ids(ann), R"(["1","2"])");
  EXPECT_EQ(EntField(node.Act(R"({"store":"load","kind":"entry","id":"1")" + wait), "text"),
            "hello");

  // Entry 1 moves to bob with new text; entry 2 goes away.
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"1","user":"bob","text":"goodbye"}})");
  const uint64_t pos =
      *node.Act(R"({"store":"remove","kind":"entry","id":"2"})").GetUint("position");
  const std::string wait2 = R"(,"min_position":)" + std::to_string(pos) + "}";
  EXPECT_EQ(node.Act(R"({"entries":"user","user":"ann")" + wait2).GetUint("count"), 0u);
  EXPECT_EQ(Ids(node.Act(R"({"entries":"user","user":"bob")" + wait2)), R"(["1","3"])");
  EXPECT_EQ(EntField(node.Act(R"({"store":"load","kind":"entry","id":"1")" + wait2), "text"),
            "goodbye");
  EXPECT_EQ(node.Try(R"({"store":"load","kind":"entry","id":"2")" + wait2).status().code(),
            Code::kNotFound);
}

TEST(CqrsProjection, ListsAreServedFromTheReadModelWithFiltersAndCursors) {
  TempDir dir;
  Node node(dir.path());
  for (int i = 0; i < 5; ++i) {
    node.Act(R"({"store":"save","kind":"entry","ent":{"id":"e)" + std::to_string(i) +
             R"(","user":")" + (i % 2 ? "odd" : "even") + R"("}})");
  }
  const std::string wait = R"(,"min_position":5})";
  Message page =
      node.Act(R"({"store":"list","kind":"entry","q":{"user":"even","limit$":2})" + wait);
  auto items = ParseJson(*page.GetArrayJson("items"), "items");
  ASSERT_EQ(items->Size(), 2u);
  EXPECT_STREQ((*items)[1]["id"].GetString(), "e2");
  ASSERT_TRUE(page.GetString("cursor"));
  Message rest =
      node.Act(R"({"store":"list","kind":"entry","q":{"user":"even","limit$":2,"cursor$":")" +
               std::string(*page.GetString("cursor")) + R"("}})");
  items = ParseJson(*rest.GetArrayJson("items"), "items");
  ASSERT_EQ(items->Size(), 1u);
  EXPECT_STREQ((*items)[0]["id"].GetString(), "e4");
  EXPECT_FALSE(rest.Has("cursor"));
  EXPECT_EQ(node.Try(R"({"store":"list","kind":"entry","q":{"sort$":"user"}})").status().code(),
            Code::kInvalid);
}

TEST(CqrsProjection, MinPositionNotReachedAnswersTimeout) {
  TempDir dir;
  Node node(dir.path());
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"a","user":"u"}})");
  auto reply = node.Try(R"({"entries":"user","user":"u","min_position":1000,"timeout_ms":30})");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kTimeout);
  EXPECT_NE(reply.status().details_json().find(R"("min_position":1000)"), std::string::npos);
}

TEST(CqrsProjection, BadQueryFieldsAnswerInvalid) {
  TempDir dir;
  Node node(dir.path());
  const std::pair<const char*, const char*> cases[] = {
      {R"({"entries":"user","user":"u","min_position":-1})", "min_position"},
      {R"({"entries":"user","user":"u","min_position":"5"})", "min_position"},
      {R"({"entries":"user","user":"u","timeout_ms":1.5})", "timeout_ms"},
      {R"({"entries":"user"})", "user"},
      {R"({"store":"load","kind":"entry"})", "id"},
  };
  for (const auto& [json, field] : cases) {
    auto reply = node.Try(json);
    ASSERT_FALSE(reply.ok()) << json;
    EXPECT_EQ(reply.status().code(), Code::kInvalid) << json;
    EXPECT_EQ(reply.status().message().rfind(std::string(field) + ":", 0), 0u)
        << reply.status().ToString();
  }
}

TEST(CqrsProjection, RebuildBesideTheLiveOneAndSwapFailsNoQuery) {
  TempDir dir;
  Node node(dir.path());
  uint64_t last = 0;
  for (int i = 0; i < 1500; ++i) {
    last = *node.Act(R"({"store":"save","kind":"entry","ent":{"id":"e)" + std::to_string(i % 300) +
                     R"(","user":"u)" + std::to_string(i % 7) + R"(","text":"w)" +
                     std::to_string(i % 11) + R"("}})")
                .GetUint("position");
  }
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, served{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        auto reply = node.bus.ActAndWait(Msg(R"({"store":"load","kind":"entry","id":"e)" +
                                             std::to_string((i * 7 + t) % 300) +
                                             R"(","min_position":)" + std::to_string(last) + "}"));
        (reply.ok() ? served : failed)++;
      }
    });
  }
  // Writers keep going while the rebuild runs.
  std::thread writer([&] {
    for (int i = 0; !stop && i < 500; ++i) {
      (void)node.bus.ActAndWait(Msg(R"({"store":"save","kind":"entry","ent":{"id":"e)" +
                                    std::to_string(i % 300) + R"(","user":"z"}})"));
    }
  });
  auto rebuilt = node.StartProjection(MakeEntitiesProjection("entry"), dir.Sub("rm-entities-v2"),
                                      store::Durability::kGroup);
  ASSERT_TRUE(rebuilt->WaitApplied(node.log->Head(), std::chrono::seconds(20)));
  const int before_swap = served.load();
  ASSERT_TRUE(SwapRoutes(node.bus, {"store:load,kind:entry", "store:list,kind:entry"}, rebuilt,
                         "entities v2")
                  .ok());
  ASSERT_TRUE(Eventually([&] { return served.load() > before_swap + 200; }));
  stop = true;
  for (auto& r : readers) r.join();
  writer.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(node.bus.routes()->Find(Msg(R"({"store":"load","kind":"entry","id":"e1"})"))->handler,
            rebuilt);
  node.entities->Stop();
  ASSERT_TRUE(Eventually([&] { return rebuilt->applied() >= node.log->Head(); }));
  // The rebuilt read model agrees with the target store.
  ASSERT_TRUE(Eventually([&] { return node.applier->applied() >= node.log->Head(); }));
  for (int i = 0; i < 300; i += 37) {
    std::string id = "e" + std::to_string(i);
    auto projected = ParseJson(
        *node.Act(R"({"store":"load","kind":"entry","id":")" + id + R"("})").GetObjectJson("ent"),
        "ent");
    auto stored = ParseJson(*node.store->Load("entry", id), "ent");
    EXPECT_STREQ((*projected)["user"].GetString(), (*stored)["user"].GetString()) << id;
  }
  rebuilt->Stop();
}

TEST(CqrsProjection, StatusShowsAppliedHeadAndLagPerComponent) {
  TempDir dir;
  Node node(dir.path());
  for (int i = 0; i < 10; ++i) node.Act(R"({"store":"save","kind":"entry","ent":{"user":"u"}})");
  ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }));
  Message status = node.Act(R"({"cqrs":"status"})");
  auto items = ParseJson(*status.GetArrayJson("items"), "items");
  ASSERT_EQ(items->Size(), 3u);  // the applier and two projections
  for (const auto& item : items->GetArray()) {
    EXPECT_EQ(item["applied"].GetUint64(), 10u) << item["name"].GetString();
    EXPECT_EQ(item["head"].GetUint64(), 10u);
    EXPECT_EQ(item["lag"].GetUint64(), 0u);
  }
  // Without a runner the lag shows.
  node.per_user->Stop();
  node.Act(R"({"store":"save","kind":"entry","ent":{"user":"u"}})");
  Message one = node.Act(R"({"cqrs":"status","name":"count_per_user:entry"})");
  items = ParseJson(*one.GetArrayJson("items"), "items");
  ASSERT_EQ(items->Size(), 1u);
  EXPECT_EQ((*items)[0]["lag"].GetUint64(), 1u);
  EXPECT_EQ(node.Try(R"({"cqrs":"status","name":"nope"})").status().code(), Code::kNotFound);
}

TEST(CqrsProjection, ChangeFeedSourceProjectsWhatTheStoreApplied) {
  TempDir dir;
  Node node(dir.path(), {.with_projections = false});
  ProjectionOptions options;
  options.path = dir.Sub("rm-feed");
  auto feed = Node::Must(ProjectionService::Start(
      MakeCountPerUserProjection(),
      MakeChangeFeedSource(node.bus, Msg(R"({"store":"changes","kind":"entry","cqrs":"apply"})"),
                           1),
      options));
  Node::Check(node.bus.Add("entries:user", feed));
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"a","user":"ann"}})");
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"b","user":"ann"}})");
  node.Act(R"({"store":"remove","kind":"entry","id":"a"})");
  ASSERT_TRUE(Eventually([&] {
    return node.applier->applied() == 3 && feed->applied() >= node.store->feed().LastSequence();
  }));
  Message ann = node.Act(R"({"entries":"user","user":"ann"})");
  EXPECT_EQ(ann.GetUint("count"), 1u);
  EXPECT_EQ(Ids(ann), R"(["b"])");
  feed->Stop();
}

// A projection over a store's feed waits on a long-poll, not a poll tick: with a 10 s poll
// interval and wait, a new record is projected well within them.
TEST(CqrsProjection, ChangeFeedSourceReactsToARecordWithoutWaitingForAPoll) {
  TempDir dir;
  Node node(dir.path(), {.with_projections = false});
  ProjectionOptions options;
  options.path = dir.Sub("rm-feed");
  auto feed = Node::Must(ProjectionService::Start(
      MakeCountPerUserProjection(),
      MakeChangeFeedSource(node.bus, Msg(R"({"store":"changes","kind":"entry","cqrs":"apply"})"),
                           10'000, 10'000),
      options));
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"a","user":"ann"}})");
  ASSERT_TRUE(Eventually([&] { return node.applier->applied() == 1; }));
  ASSERT_TRUE(feed->WaitApplied(1, std::chrono::seconds(3))) << "the first record took over 3 s";
  // Caught up: the runner now waits. The next record must arrive long before 10 s.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto written = std::chrono::steady_clock::now();
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"b","user":"ann"}})");
  const uint64_t last = node.store->feed().LastSequence();
  EXPECT_TRUE(feed->WaitApplied(last, std::chrono::seconds(3)))
      << "not projected within 3 s (applied " << feed->applied() << " of " << last << ")";
  EXPECT_LT(std::chrono::steady_clock::now() - written, std::chrono::seconds(3));
  const auto stopping = std::chrono::steady_clock::now();
  feed->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(2));
}

// The store's feed trimmed past a projection's checkpoint: the projection clears its read model
// and rebuilds it from a snapshot of the store (every entity of the kind, then the feed from the
// snapshot's sequence) instead of retrying the lost position forever.
TEST(CqrsProjection, AFeedTrimmedPastTheCheckpointRebuildsTheReadModel) {
  TempDir dir;
  Node node(dir.path(), {.with_projections = false});
  ProjectionOptions options;
  options.path = dir.Sub("rm-feed");
  auto start = [&] {
    return Node::Must(ProjectionService::Start(
        MakeCountPerUserProjection(),
        MakeChangeFeedSource(node.bus, Msg(R"({"store":"changes","kind":"entry","cqrs":"apply"})"),
                             1, 50),
        options));
  };
  auto feed = start();
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"a","user":"ann"}})");
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"b","user":"ann"}})");
  ASSERT_TRUE(Eventually([&] { return node.applier->applied() == 2; }));
  ASSERT_TRUE(feed->WaitApplied(node.store->feed().LastSequence(), std::chrono::seconds(3)));
  feed->Stop();
  feed.reset();
  // While it is stopped, a change it will miss, then the feed is trimmed past it.
  node.Act(R"({"store":"remove","kind":"entry","id":"a"})");
  ASSERT_TRUE(Eventually([&] { return node.applier->applied() == 3; }));
  const uint64_t next = node.store->feed().LastSequence() + 1;
  ASSERT_TRUE(node.store->feed().RegisterConsumer("trim-all", next).ok());
  ASSERT_GT(*node.store->feed().TrimFeed(), 0u);
  ASSERT_TRUE(node.store->feed().RemoveConsumer("trim-all").ok());
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"c","user":"ann"}})");
  ASSERT_TRUE(Eventually([&] { return node.applier->applied() == 4; }));

  feed = start();
  Node::Check(node.bus.Add("entries:user", feed));
  const uint64_t last = node.store->feed().LastSequence();
  ASSERT_TRUE(feed->WaitApplied(last, std::chrono::seconds(5)))
      << "stuck at " << feed->applied() << " of " << last;
  Message ann = node.Act(R"({"entries":"user","user":"ann"})");
  // Rebuilt from a snapshot of the store: "a" (removed while it was stopped) is gone; "b" (last
  // changed before the trim point) and "c" are there.
  EXPECT_EQ(Ids(ann), R"(["b","c"])");
  feed->Stop();
}

TEST(CqrsProjection, RestartContinuesFromTheCheckpoint) {
  TempDir dir;
  {
    Node node(dir.path());
    for (int i = 0; i < 50; ++i) node.Act(R"({"store":"save","kind":"entry","ent":{"user":"u"}})");
    ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }));
  }
  Node node(dir.path());
  EXPECT_EQ(node.per_user->applied(), 50u);
  node.Act(R"({"store":"save","kind":"entry","ent":{"user":"u"}})");
  EXPECT_EQ(node.Act(R"({"entries":"user","user":"u","min_position":51})").GetUint("count"), 51u);
}

}  // namespace
}  // namespace shardkit::cqrs::testing
