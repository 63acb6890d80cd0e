// Appliers: applied by message, per-key order under retries, dead letters and replay, idempotence.
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "cqrs_test_util.h"

namespace shardkit::cqrs::testing {
namespace {

// A target for kind "thing" that records what it applied and fails as told.
struct FakeTarget {
  std::mutex mu;
  std::map<std::string, std::vector<int64_t>> applied;  // id -> seq values, in apply order
  std::function<bool(const std::string& id)> fail = [](const std::string&) { return false; };
  int failures = 0;

  std::shared_ptr<shardkit::Handler> MakeHandler() {
    return shardkit::MakeSyncHandler([this](Message m, const Context&) -> Result<Message> {
      auto ent = ParseJson(*m.GetObjectJson("ent"), "ent");
      std::string id = (*ent)["id"].GetString();
      std::lock_guard lock(mu);
      if (fail(id)) {
        ++failures;
        return Status::Unavailable("target down for " + id);
      }
      applied[id].push_back((*ent)["seq"].GetInt64());
      return Message();
    });
  }
};

struct ThingNode {
  // `routed`: whether the target is routed from the start (else: RouteTarget() later).
  explicit ThingNode(const std::string& dir, ApplierOptions options, bool routed = true) {
    CommandLogOptions log_options;
    log_options.path = dir + "/log";
    log = Node::Must(CommandLog::Open(log_options));
    Node::Check(bus.Add("store:save,kind:thing", MakeCommandService(log)));
    if (routed) RouteTarget();
    applier = Node::Must(Applier::Start(log, bus, std::move(options)));
    Node::Check(bus.Add("cqrs:deadletter,cmd:*", MakeDeadLetterService(log, applier)));
  }
  ~ThingNode() { applier->Stop(); }
  void RouteTarget() {
    Node::Check(bus.Add("store:*,kind:thing,cqrs:apply", target.MakeHandler()));
  }
  uint64_t Save(const std::string& id, int seq) {
    auto ack = bus.ActAndWait(Msg(R"({"store":"save","kind":"thing","ent":{"id":")" + id +
                                  R"(","seq":)" + std::to_string(seq) + "}}"));
    EXPECT_TRUE(ack.ok()) << ack.status().ToString();
    return ack.ok() ? *ack->GetUint("position") : 0;
  }
  bool Applied() {
    return Eventually([&] { return applier->applied() >= log->Head(); });
  }

  Bus bus;
  FakeTarget target;
  std::shared_ptr<CommandLog> log;
  std::shared_ptr<Applier> applier;
};

ApplierOptions FastRetries(uint32_t attempts) {
  ApplierOptions o;
  o.max_attempts = attempts;
  o.initial_backoff_ms = 1;
  o.max_backoff_ms = 4;
  o.stamp_field = "";  // the fake target is not a store
  return o;
}

TEST(CqrsApplier, AckThenReadWithMinPositionAlwaysSeesTheWrite) {
  TempDir dir;
  Node node(dir.path());
  for (int i = 0; i < 200; ++i) {
    std::string id = "e" + std::to_string(i % 20);
    Message ack = node.Act(R"({"store":"save","kind":"entry","ent":{"id":")" + id +
                           R"(","user":"ann","n":)" + std::to_string(i) + "}}");
    const std::string pos = std::to_string(*ack.GetUint("position"));
    Message got = node.Act(R"({"store":"load","kind":"entry","id":")" + id +
                           R"(","min_position":)" + pos + R"(,"timeout_ms":5000})");
    auto ent = ParseJson(*got.GetObjectJson("ent"), "ent");
    ASSERT_EQ((*ent)["n"].GetInt(), i);
  }
  // ...and the target store gets every write, by message, with its position stamped.
  ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }));
  auto stored = node.store->Load("entry", "e19");
  ASSERT_TRUE(stored.ok());
  auto ent = ParseJson(*stored, "ent");
  EXPECT_EQ((*ent)["n"].GetInt(), 199);
  EXPECT_EQ((*ent)["version"].GetUint64(), 10u);  // 10 saves of e19, each applied once
  EXPECT_EQ((*ent)["cqrs$position"].GetUint64(), 200u);
}

TEST(CqrsApplier, DuplicateCommandIdsAreAppliedOnce) {
  TempDir dir;
  Node node(dir.path());
  for (int i = 0; i < 5; ++i)
    node.Act(R"({"store":"save","kind":"entry","command_id":"once","ent":{"id":"x","user":"u"}})");
  ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }));
  auto stored = node.store->Load("entry", "x");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ((*ParseJson(*stored, "ent"))["version"].GetUint64(), 1u);
  EXPECT_EQ(node.Act(R"({"entries":"user","user":"u"})").GetUint("count"), 1u);
}

TEST(CqrsApplier, InDoubtCommandsAfterACrashAreNotAppliedTwice) {
  TempDir dir;
  {
    Node node(dir.path(), {.with_projections = false});
    for (int i = 0; i < 30; ++i) {
      node.Act(R"({"store":"save","kind":"entry","ent":{"id":"e)" + std::to_string(i % 3) +
               R"(","n":)" + std::to_string(i) + "}}");
    }
    ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }));
    node.applier->Stop();
    // A crash after applying but before checkpointing: the applied position is behind, the sent
    // one is not.
    ASSERT_TRUE(node.log->PutMeta({{"applier:applied", 10}}).ok());
  }
  Node node(dir.path(), {.with_projections = false});
  ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }));
  for (int k = 0; k < 3; ++k) {
    auto ent = ParseJson(*node.store->Load("entry", "e" + std::to_string(k)), "ent");
    EXPECT_EQ((*ent)["version"].GetUint64(), 10u) << "e" << k << " applied twice";
  }
}

TEST(CqrsApplier, RemoveCommandsRemoveFromTheTargetStore) {
  TempDir dir;
  Node node(dir.path());
  node.Act(R"({"store":"save","kind":"entry","ent":{"id":"r","user":"u"}})");
  node.Act(R"({"store":"remove","kind":"entry","id":"r"})");
  node.Act(R"({"store":"remove","kind":"entry","id":"never-existed"})");  // idempotent: applied
  ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }));
  EXPECT_EQ(node.store->Load("entry", "r").status().code(), Code::kNotFound);
  EXPECT_EQ(node.Act(R"({"cqrs":"deadletter","cmd":"list"})").GetArrayJson("items"), "[]");
}

TEST(CqrsApplier, PerKeyOrderIsPreservedUnderRandomFailures) {
  TempDir dir;
  ThingNode node(dir.path(), FastRetries(1000));
  std::mt19937 rng(7);
  std::mutex rng_mu;
  node.target.fail = [&](const std::string&) {
    std::lock_guard lock(rng_mu);
    return rng() % 10 < 3;
  };
  constexpr int kKeys = 20, kEach = 30;
  for (int seq = 0; seq < kEach; ++seq) {
    for (int k = 0; k < kKeys; ++k) node.Save("k" + std::to_string(k), seq);
  }
  ASSERT_TRUE(node.Applied());
  std::lock_guard lock(node.target.mu);
  EXPECT_GT(node.target.failures, 0);
  ASSERT_EQ(node.target.applied.size(), size_t{kKeys});
  for (const auto& [id, seqs] : node.target.applied) {
    ASSERT_EQ(seqs.size(), size_t{kEach}) << id;
    for (int i = 0; i < kEach; ++i) EXPECT_EQ(seqs[i], i) << id;
  }
}

TEST(CqrsApplier, PoisonCommandGoesToDeadLetterWhileOthersProceedThenReplays) {
  TempDir dir;
  ThingNode node(dir.path(), FastRetries(3));
  std::atomic<bool> broken{true};
  node.target.fail = [&](const std::string& id) { return id == "bad" && broken.load(); };
  const uint64_t bad1 = node.Save("bad", 1);
  for (int i = 0; i < 10; ++i) node.Save("good" + std::to_string(i), i);
  const uint64_t bad2 = node.Save("bad", 2);  // same key: must not overtake bad1
  node.Save("good0", 100);
  ASSERT_TRUE(node.Applied());
  {
    std::lock_guard lock(node.target.mu);
    EXPECT_EQ(node.target.applied.count("bad"), 0u);
    EXPECT_EQ(node.target.applied["good0"], (std::vector<int64_t>{0, 100}));
    EXPECT_EQ(node.target.failures, 3);  // bad1 tried max_attempts times; bad2 never sent
  }
  auto list = node.bus.ActAndWait(Msg(R"({"cqrs":"deadletter","cmd":"list"})"));
  ASSERT_TRUE(list.ok());
  auto items = ParseJson(*list->GetArrayJson("items"), "items");
  ASSERT_EQ(items->Size(), 2u);
  EXPECT_EQ((*items)[0]["position"].GetUint64(), bad1);
  EXPECT_EQ((*items)[0]["attempts"].GetUint(), 3u);
  EXPECT_NE(std::string((*items)[0]["error"].GetString()).find("target down"), std::string::npos);
  EXPECT_EQ((*items)[1]["position"].GetUint64(), bad2);
  EXPECT_NE(std::string((*items)[1]["error"].GetString()).find("blocked"), std::string::npos);
  EXPECT_EQ(node.applier->Lag().dead_letters, 2u);

  broken = false;
  auto replay = node.bus.ActAndWait(
      Msg(R"({"cqrs":"deadletter","cmd":"replay","position":)" + std::to_string(bad2) + "}"));
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  auto replayed = ParseJson(*replay->GetArrayJson("replayed"), "replayed");
  ASSERT_EQ(replayed->Size(), 2u);  // the key's letters go back together
  ASSERT_TRUE(node.Applied());
  std::lock_guard lock(node.target.mu);
  EXPECT_EQ(node.target.applied["bad"], (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(node.applier->Lag().dead_letters, 0u);
}

TEST(CqrsApplier, NoRouteToTheTargetWaitsWithoutSpendingAttemptsOrDeadLettering) {
  TempDir dir;
  ThingNode node(dir.path(), FastRetries(3), /*routed=*/false);
  for (int i = 0; i < 5; ++i) node.Save("t" + std::to_string(i % 2), i);
  // Far longer than 3 attempts with backoff 1..4 ms: nothing answers the target yet (`no_route`).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(node.applier->applied(), 0u);
  EXPECT_GT(node.applier->Lag().errors, 3u);  // it kept trying
  EXPECT_EQ(node.applier->Lag().dead_letters, 0u);
  node.RouteTarget();
  ASSERT_TRUE(node.Applied());
  EXPECT_EQ(node.applier->Lag().dead_letters, 0u);
  std::lock_guard lock(node.target.mu);
  EXPECT_EQ(node.target.applied["t0"], (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(node.target.applied["t1"], (std::vector<int64_t>{1, 3}));
}

TEST(CqrsApplier, AnInDoubtSaveWithNoRouteForItsCheckIsNotSavedAgain) {
  TempDir dir;
  {
    Node node(dir.path(), {.with_projections = false});
    for (int i = 0; i < 12; ++i) {
      node.Act(R"({"store":"save","kind":"entry","ent":{"id":"d)" + std::to_string(i % 3) +
               R"(","n":)" + std::to_string(i) + "}}");
    }
    ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }));
    node.applier->Stop();
    // A crash after applying but before checkpointing: every command is in doubt.
    ASSERT_TRUE(node.log->PutMeta({{"applier:applied", 0}}).ok());
  }
  // The node restarts with the target not routed yet: the in-doubt check's load finds no route,
  // which must not be taken for "the entity does not exist".
  Node node(dir.path(), {.with_projections = false, .target_routed = false});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(node.applier->Lag().dead_letters, 0u);
  node.RouteTarget();
  ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }));
  for (int k = 0; k < 3; ++k) {
    auto ent = ParseJson(*node.store->Load("entry", "d" + std::to_string(k)), "ent");
    EXPECT_EQ((*ent)["version"].GetUint64(), 4u) << "d" << k << " applied twice";
  }
  EXPECT_EQ(node.applier->Lag().dead_letters, 0u);
}

TEST(CqrsApplier, DeadLetterMessagesValidateTheirFields) {
  TempDir dir;
  ThingNode node(dir.path(), FastRetries(3));
  for (const char* json :
       {R"({"cqrs":"deadletter","cmd":"drop"})", R"({"cqrs":"deadletter","cmd":"list","limit":0})",
        R"({"cqrs":"deadletter","cmd":"replay","position":"x"})"}) {
    auto reply = node.bus.ActAndWait(Msg(json));
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), Code::kInvalid) << json;
  }
  auto missing = node.bus.ActAndWait(Msg(R"({"cqrs":"deadletter","cmd":"replay","position":42})"));
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace shardkit::cqrs::testing
