// A range moved between two nodes in cluster mode, with real processes and a real nats-server:
// the storage node (the migrator, the map's authority, which in cluster mode is the JetStream KV)
// fills a target node it reaches over NATS (the participant's node is the NATS server's URL), and
// a router node that follows the KV map sends the clients' writes to whichever node owns a key.
// The checks are the other process tests' (migration_processes.h): zero client errors, every
// key's history linearizable, every append key intact, every preloaded entity read back.
#include <gtest/gtest.h>

#include "migration_processes.h"
#include "shardkit/message/codec.h"

namespace shardkit::migrate::testing {
namespace {

// 40-80@own on the storage node: a target there would be a move to the range's owner.
const Variant kMoveOverNats{.name = "move_over_nats",
                            .sources = {"40-80"},
                            .targets = {"40-80@b"},
                            .other_stores = {"40-80@own"},
                            .remote = true,
                            .nats = true};

// The map as `url`'s node holds it.
std::string RangesAt(LiveMigrationProcesses& cluster, const std::string& url) {
  auto map = cluster.CallNode(url, R"({"shardmap":"get","map":"main"})");
  if (!map.ok()) return map.status().ToString();
  return fmt::format("epoch {} {}", map->GetUint("epoch").value_or(0),
                     map->GetArrayJson("ranges").value_or(""));
}

// Start (the copy crosses NATS), verify, cutover under 8 clients to a slow target node (the map
// swapped in the KV by compare-and-swap), rollback and a second cutover, complete; every process
// killed (-9) and started again, every key read back.
TEST(NatsMigration, AMoveBetweenClusterNodesOverNatsLosesNothing) {
  LiveMigrationProcesses cluster(kMoveOverNats);
  SHARDKIT_REQUIRE_COMPONENT(cluster.nats()->ok(), cluster.nats()->problem(), "nats-server");
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  // A target much slower than the source (each replicated batch lands 20 ms late): the cutover
  // must wait for it to reach the fence.
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget("20"));
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(3000));
  cluster.StartTraffic(8, 300);
  cluster.WaitOps(500);

  // One URL reaches every node of the cluster: a target served by the source's own process is
  // still told apart, and refused before anything is created.
  auto owner = cluster.MigrateRaw(
      fmt::format(R"({{"migrate":"start","id":"own","sources":["40-80"],"targets":["40-80@own"],)"
                  R"("nodes":{{"40-80@own":"{}"}}}})",
                  cluster.nats()->url()));
  ASSERT_FALSE(owner.ok());
  EXPECT_NE(
      owner.status().message().find(fmt::format(
          "target 40-80@own on node {}: that node serves the source 40-80", cluster.nats()->url())),
      std::string::npos)
      << owner.status().ToString();
  EXPECT_FALSE(cluster.MigrateAs("status", "own").ok()) << "a refused start recorded a migration";
  ASSERT_NO_FATAL_FAILURE(StartCopyAndVerify(cluster));

  auto cut = CaughtUpStep(cluster, "cutover", "cutover over NATS");
  ASSERT_TRUE(cut.ok()) << cut.status().ToString() << cluster.logs();
  EXPECT_EQ(cut->GetUint("epoch"), 2u);
  // The router and the target node hold the KV's map, not a copy of the storage node's.
  const std::string moved = R"(epoch 2 ["-40","40-80@b","80-c0","c0-"])";
  EXPECT_EQ(RangesAt(cluster, cluster.router_url()), moved);
  EXPECT_EQ(RangesAt(cluster, cluster.target_url()), moved);
  cluster.WaitOps(800);
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  auto rollback = cluster.Migrate("rollback");
  ASSERT_TRUE(rollback.ok()) << rollback.status().ToString() << cluster.logs();
  EXPECT_EQ(rollback->GetUint("epoch"), 3u);
  cluster.WaitOps(800);
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  auto again = cluster.Migrate("cutover");
  ASSERT_TRUE(again.ok()) << again.status().ToString() << cluster.logs();
  EXPECT_EQ(RangesAt(cluster, cluster.router_url()), R"(epoch 4 ["-40","40-80@b","80-c0","c0-"])");
  cluster.WaitOps(500);
  cluster.StopTraffic();
  auto completed = cluster.Migrate("complete");
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  ASSERT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors())
                                 << cluster.logs();

  ASSERT_NO_FATAL_FAILURE(CheckAfterKillAndRestart(cluster));
}

}  // namespace
}  // namespace shardkit::migrate::testing
