// The write side: acks with positions, idempotent command ids, validation, group commit.
#include <set>

#include "cqrs_test_util.h"

namespace shardkit::cqrs::testing {
namespace {

TEST(CqrsCommand, AckCarriesCommandIdPositionAndEntityId) {
  TempDir dir;
  Node node(dir.path(), {.with_applier = false, .with_projections = false});
  Message ack = node.Act(
      R"({"store":"save","kind":"entry","command_id":"c1","ent":{"id":"e1","text":"hi"}})");
  EXPECT_EQ(ack.GetString("command_id"), "c1");
  EXPECT_EQ(ack.GetUint("position"), 1u);
  EXPECT_EQ(ack.GetString("id"), "e1");
  EXPECT_FALSE(ack.Has("duplicate"));
  Message second = node.Act(R"({"store":"save","kind":"entry","ent":{"text":"no id"}})");
  EXPECT_EQ(second.GetUint("position"), 2u);
  EXPECT_EQ(second.GetString("command_id"), "@2");
  ASSERT_TRUE(second.GetString("id"));
  // The generated id is logged inside ent, so a re-application addresses the same entity.
  auto logged = node.log->Read(2, 1);
  ASSERT_TRUE(logged.ok());
  EXPECT_NE(logged->at(0).json.find(std::string(*second.GetString("id"))), std::string::npos);
}

TEST(CqrsCommand, DuplicateCommandIdIsAcknowledgedWithItsOriginalPositionAcrossRestarts) {
  TempDir dir;
  std::string first_id;
  {
    Node node(dir.path(), {.with_applier = false, .with_projections = false});
    node.Act(R"({"store":"save","kind":"entry","ent":{"text":"x"}})");
    Message a =
        node.Act(R"({"store":"save","kind":"entry","command_id":"dup","ent":{"text":"y"}})");
    first_id = std::string(*a.GetString("id"));
    Message b =
        node.Act(R"({"store":"save","kind":"entry","command_id":"dup","ent":{"text":"y"}})");
    EXPECT_EQ(b.GetUint("position"), 2u);
    EXPECT_EQ(b.GetBool("duplicate"), true);
    EXPECT_EQ(b.GetString("id"), first_id);
  }
  Node node(dir.path(), {.with_applier = false, .with_projections = false});
  Message c = node.Act(R"({"store":"save","kind":"entry","command_id":"dup","ent":{"text":"y"}})");
  EXPECT_EQ(c.GetUint("position"), 2u);
  EXPECT_EQ(c.GetBool("duplicate"), true);
  EXPECT_EQ(c.GetString("id"), first_id);
  EXPECT_EQ(node.log->Head(), 2u);
}

TEST(CqrsCommand, ConcurrentDuplicatesGetOnePosition) {
  TempDir dir;
  Node node(dir.path(), {.with_applier = false, .with_projections = false});
  std::vector<std::thread> threads;
  std::vector<uint64_t> positions(16);
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      positions[t] =
          *node.Act(R"({"store":"save","kind":"entry","command_id":"same","ent":{"id":"a"}})")
               .GetUint("position");
    });
  }
  for (auto& t : threads) t.join();
  for (uint64_t p : positions) EXPECT_EQ(p, 1u);
  EXPECT_EQ(node.log->Head(), 1u);
}

TEST(CqrsCommand, ConcurrentAppendsGetContiguousUniquePositions) {
  TempDir dir;
  Node node(dir.path(), {.with_applier = false, .with_projections = false});
  constexpr int kThreads = 16, kEach = 200;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        got[t].push_back(
            *node.Act(R"({"store":"save","kind":"entry","ent":{"text":"x"}})").GetUint("position"));
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& v : got) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));  // one client's positions are monotonic
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads * kEach});
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), uint64_t{kThreads * kEach});
}

TEST(CqrsCommand, BadCommandsAnswerInvalidNamingTheFieldAndLogNothing) {
  TempDir dir;
  Node node(dir.path(), {.with_applier = false, .with_projections = false});
  const std::pair<const char*, const char*> cases[] = {
      {R"({"store":"save","kind":"entry","ent":"text"})", "ent"},
      {R"({"store":"save","kind":"entry"})", "ent"},
      {R"({"store":"save","kind":"entry","ents":[{"a":1}]})", "ents"},
      {R"({"store":"save","kind":"entry","ent":{"id":7}})", "ent.id"},
      {R"({"store":"save","kind":"entry","id":"a","ent":{"id":"b"}})", "id"},
      {R"({"store":"save","kind":"entry","command_id":"@1","ent":{}})", "command_id"},
      {R"({"store":"save","kind":"entry","command_id":"","ent":{}})", "command_id"},
      {R"({"store":"save","kind":"entry","command_id":5,"ent":{}})", "command_id"},
      {R"({"store":"remove","kind":"entry"})", "id"},
      {R"({"store":"remove","kind":"entry","q":{"a":1},"all":true})", "q"},
  };
  for (const auto& [json, field] : cases) {
    auto reply = node.Try(json);
    ASSERT_FALSE(reply.ok()) << json;
    EXPECT_EQ(reply.status().code(), Code::kInvalid) << json;
    EXPECT_EQ(reply.status().message().rfind(std::string(field) + ":", 0), 0u)
        << reply.status().ToString();
  }
  EXPECT_EQ(node.log->Head(), 0u);
  // A read routed to the command service by mistake is not a command either.
  auto plan =
      PlanCommand(Msg(R"({"store":"load","kind":"entry","id":"a"})"), "id", [] { return "x"; });
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message().rfind("store:", 0), 0u);
}

TEST(CqrsCommand, DomainCommandsAreLoggedWithTheirKeyField) {
  auto plan =
      PlanCommand(Msg(R"({"post":"entry","id":"p1","command_id":"x","meta$":{"deadline":5}})"),
                  "id", [] { return "unused"; });
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->key, "p1");
  EXPECT_EQ(plan->command_id, "x");
  EXPECT_EQ(plan->json.find("meta$"), std::string::npos);  // a replay must not inherit a deadline
}

}  // namespace
}  // namespace shardkit::cqrs::testing
