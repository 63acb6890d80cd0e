// A live split inside the shardkit::testing cluster fixture, wired by node TOML: the shards and
// the migration live on node "shards", clients write through its router and through a second node
// whose router keeps its own shard map (a separate process in a real deployment) and reaches the
// shards over a link. Checks: no write lost or failed across the cutover, a stale router refused
// with wrong_shard until its map is told, and a rollback returning the range with later writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

#include <shardkit/migrate/migration.h>
#include <shardkit/store/keyspace.h>
#include <shardkit/testing/testing.h>

namespace shardkit::migrate {
namespace {

using shardkit::testing::Cluster;
using shardkit::testing::HasField;
using shardkit::testing::IsErrorReply;
using shardkit::testing::IsOkReply;
using shardkit::testing::Msg;

using shardkit::testing::TempDir;

std::string Store(const std::string& name, const std::string& shard) {
  return fmt::format(R"(
[[service]]
name = "{}"
type = "store"
backend = "memory"
shard = "{}"
)",
                     name, shard);
}

// "shards": the map (-80, 80-), the two shards, the split's targets 80-c0 and c0- (not in the map
// yet: they only receive replicated data until the cutover), a router.
std::string ShardsToml() {
  return R"(
[node]
name = "shards"
[[listener]]
url = "tcp://127.0.0.1:7201"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
[[service]]
name = "router"
type = "shard-router"
node_id = 1
)" + Store("low", "-80") +
         Store("high", "80-") + Store("high-a", "80-c0") + Store("high-b", "c0-");
}

// "edge": a router with its own copy of the map, every shard behind the link to "shards".
std::string EdgeToml() {
  std::string toml = R"(
[node]
name = "edge"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
[[service]]
name = "router"
type = "shard-router"
node_id = 2
)";
  for (const char* shard : {"-80", "80-", "80-c0", "c0-"}) {
    toml += fmt::format(R"(
[[route]]
pattern = 'store:*,kind:*,shard:"{}"'
to = "tcp://127.0.0.1:7201"
timeout_ms = 5000
)",
                        shard);
  }
  return toml;
}

constexpr size_t kShards = 0;
constexpr size_t kEdge = 1;

struct SplitFixture {
  TempDir dir;
  std::unique_ptr<Cluster> cluster = Cluster::FromToml({ShardsToml(), EdgeToml()});
  std::unique_ptr<Migration> migration;
  std::map<std::string, std::string> acknowledged;  // id -> last acknowledged value

  Participant Part(const std::string& shard) {
    Node& node = cluster->node(kShards);
    return {shard, node.shard_store(shard), node.shard_gate(shard)};
  }
  using Node = Cluster::Node;

  Status Open() {
    MigrationSpec spec;
    spec.id = "split-80";
    spec.sources = {Part("80-")};
    spec.targets = {Part("80-c0"), Part("c0-")};
    spec.map = cluster->node(kShards).shard_map();
    spec.journal_path = dir.path() + "/split-80.journal";
    auto opened = Migration::Open(std::move(spec));
    if (!opened.ok()) return opened.status();
    migration = std::move(opened).value();
    return Status::Ok();
  }

  // Saves `id` with a fresh value through `node`; records it when acknowledged.
  Result<Message> Write(size_t node, const std::string& id, int round) {
    std::string value = fmt::format("{}-r{}", id, round);
    auto reply = cluster->Act(
        node, Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","v":"{}"}}}})",
                              id, value)));
    if (reply.ok()) acknowledged[id] = value;
    return reply;
  }

  // Every acknowledged write, read back through the shards node's router.
  void ExpectEveryAcknowledgedWrite() {
    for (const auto& [id, value] : acknowledged) {
      EXPECT_THAT(cluster->Act(kShards, Msg(fmt::format(
                                            R"({{"store":"load","kind":"entry","id":"{}"}})", id))),
                  IsOkReply(HasField("ent.v", value)))
          << id;
    }
  }
};

// Ids on the high side (80-), half of them in each target.
std::vector<std::string> HighIds(size_t n) {
  std::vector<std::string> ids;
  for (int i = 0; ids.size() < n; ++i) {
    std::string id = fmt::format("k{}", i);
    if (store::Ksid(id) >= 0x8000000000000000ull) ids.push_back(id);
  }
  return ids;
}

TEST(MigrateCluster, ASplitUnderTrafficLosesNoWriteAndFailsNoClientOfItsNode) {
  SplitFixture f;
  ASSERT_NE(f.cluster, nullptr);
  auto ids = HighIds(40);
  for (const auto& id : ids) ASSERT_THAT(f.Write(kShards, id, 0), IsOkReply());
  ASSERT_TRUE(f.Open().ok());
  ASSERT_TRUE(f.migration->Start().ok());
  for (const auto& id : ids) ASSERT_THAT(f.Write(kShards, id, 1), IsOkReply()) << "during catch-up";
  ASSERT_TRUE(f.migration->WaitForLag(0, std::chrono::seconds(10)));
  auto verified = f.migration->Verify();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_TRUE(verified->ok()) << "missing " << verified->missing << " different "
                              << verified->different;

  // The cutover runs on its own thread while this one keeps writing through the router: writes
  // that meet the closed gate are held, then answered wrong_shard and resent by the router.
  std::atomic<bool> done{false};
  Result<CutoverReport> report = Status::Internal("not run");
  std::thread cutover([&] {
    report = f.migration->Cutover();
    done = true;
  });
  int errors = 0;
  int round = 2;
  while (!done || round < 4) {
    for (const auto& id : ids) {
      if (!f.Write(kShards, id, round).ok()) ++errors;
    }
    ++round;
  }
  cutover.join();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->epoch, 2u);
  EXPECT_EQ(errors, 0) << "client-visible errors across the cutover";

  // After the cutover every write lands in a target; the source keeps its old copy untouched.
  for (const auto& id : ids) ASSERT_THAT(f.Write(kShards, id, round), IsOkReply());
  f.ExpectEveryAcknowledgedWrite();
  size_t in_targets = 0;
  for (const auto& id : ids) {
    for (const char* target : {"80-c0", "c0-"}) {
      auto stored = f.cluster->node(kShards).shard_store(target)->Load("entry", id);
      if (stored.ok() && stored->find(f.acknowledged[id]) != std::string::npos) ++in_targets;
    }
  }
  EXPECT_EQ(in_targets, ids.size()) << "each id's last value is in exactly one target";
}

TEST(MigrateCluster, AStaleRouterOnAnotherNodeIsRefusedWrongShardUntilItsMapIsTold) {
  SplitFixture f;
  ASSERT_NE(f.cluster, nullptr);
  auto ids = HighIds(4);
  for (const auto& id : ids) ASSERT_THAT(f.Write(kEdge, id, 0), IsOkReply());
  ASSERT_TRUE(f.Open().ok());
  ASSERT_TRUE(f.migration->Start().ok());
  ASSERT_TRUE(f.migration->WaitForLag(0, std::chrono::seconds(10)));
  ASSERT_TRUE(f.migration->Cutover().ok());

  // edge's router refreshes from edge's own map, which is still epoch 1, so it does not retry: a
  // map change on one node does not reach the maps of others by itself.
  auto& link = f.cluster->faults().On("edge->shards", "store:save").Delay(0);
  EXPECT_THAT(f.Write(kEdge, ids[0], 1), IsErrorReply(Code::kWrongShard));
  EXPECT_EQ(link.hits(), 1) << "no retry with an unchanged map";

  // Told the new map (as an operator or a migration tool must), edge routes to the targets.
  ASSERT_THAT(f.cluster->Act(kEdge, R"({"shardmap":"set","map":"main","expected_epoch":1,)"
                                    R"("ranges":["-80","80-c0","c0-"]})"),
              IsOkReply(HasField("epoch", 2)));
  for (const auto& id : ids) EXPECT_THAT(f.Write(kEdge, id, 2), IsOkReply());
  f.ExpectEveryAcknowledgedWrite();
}

TEST(MigrateCluster, ARollbackReturnsTheRangeWithTheWritesMadeAfterTheCutover) {
  SplitFixture f;
  ASSERT_NE(f.cluster, nullptr);
  auto ids = HighIds(20);
  for (const auto& id : ids) ASSERT_THAT(f.Write(kShards, id, 0), IsOkReply());
  ASSERT_TRUE(f.Open().ok());
  ASSERT_TRUE(f.migration->Start().ok());
  ASSERT_TRUE(f.migration->WaitForLag(0, std::chrono::seconds(10)));
  ASSERT_TRUE(f.migration->Cutover().ok());
  for (const auto& id : ids) ASSERT_THAT(f.Write(kShards, id, 1), IsOkReply()) << "to the targets";

  auto back = f.migration->Rollback();
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->epoch, 3u);
  EXPECT_EQ(f.cluster->node(kShards).shard_map()->Current()->shards().size(), 2u)
      << "the map names -80 and 80- again";
  f.ExpectEveryAcknowledgedWrite();
  // The source itself holds the values written to the targets after the cutover.
  for (const auto& id : ids) {
    auto stored = f.cluster->node(kShards).shard_store("80-")->Load("entry", id);
    ASSERT_TRUE(stored.ok()) << id;
    EXPECT_NE(stored->find(f.acknowledged[id]), std::string::npos) << id << ": " << *stored;
  }
}

}  // namespace
}  // namespace shardkit::migrate
