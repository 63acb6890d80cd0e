// A migration coordinated from a node that holds neither its sources nor its targets: the
// *coordinator* node (the authoritative map and the migrator, no store), the storage node (a
// follower of its map, serving the sources, which the migrator reads, fences and retires over
// TCP), the target node (a follower too, serving the targets) and a router node. Clients talk
// only to the router. The checks are the other process tests' (migration_processes.h): every
// key's history linearizable, every append key intact, every preloaded entity read back, each
// shard's files holding only its range.
#include <gtest/gtest.h>

#include "migration_processes.h"
#include "shardkit/message/codec.h"

namespace shardkit::migrate::testing {
namespace {

const Variant kMoveThird{"move",
                         {"40-80"},
                         {"40-80@b"},
                         {},
                         /*remote=*/true,
                         {},
                         /*coordinator=*/true};
const Variant kSplitThird{"split",
                          {"40-80"},
                          {"40-60", "60-80"},
                          {},
                          /*remote=*/true,
                          {},
                          /*coordinator=*/true};

// The operator's move command with both nodes named.
std::string MoveCommand(const LiveMigrationProcesses& cluster) {
  return fmt::format(
      "move --id m1 --source 40-80 --target 40-80@b --node {} --source-node {} --cutover "
      "--complete",
      cluster.target_url(), cluster.storage_address());
}

class ThirdNodeCoordinatorTest : public ::testing::TestWithParam<Variant> {};

// Start (the copy reads the remote source and fills the remote target), verify, cutover under 16
// clients to a slow target node (the source's gate closed and retired on the storage node),
// rollback, cutover again,
// complete and cleanup (the source's copy deleted over the network); then every process is killed
// (-9), restarted, and every key read back.
TEST_P(ThirdNodeCoordinatorTest, UnderSixteenClientsNothingIsLostOrServedByTwoOwners) {
  LiveMigrationProcesses cluster(GetParam());
  ASSERT_NO_FATAL_FAILURE(cluster.StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  // A target node slower than the source (each replicated batch lands 20 ms late): the cutover
  // must hold the source's writes on the storage node until the target reached the fence.
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget("20"));
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(4000));
  cluster.StartTraffic(16, 300);
  cluster.WaitOps(500);

  ASSERT_NO_FATAL_FAILURE(StartCopyAndVerify(cluster));

  cluster.WaitOps(500);
  auto cut =
      CaughtUpStep(cluster, "cutover", "cutover from the storage node, coordinated by a third");
  ASSERT_TRUE(cut.ok()) << cut.status().ToString() << cluster.logs();
  cluster.WaitOps(1000);
  auto rollback = CaughtUpStep(cluster, "rollback", "rollback to the storage node");
  ASSERT_TRUE(rollback.ok()) << rollback.status().ToString() << cluster.logs();
  cluster.WaitOps(1000);
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  auto again = cluster.Migrate("cutover");
  ASSERT_TRUE(again.ok()) << again.status().ToString() << cluster.logs();
  cluster.WaitOps(500);
  cluster.StopTraffic();
  ASSERT_TRUE(cluster.Migrate("complete").ok());
  auto cleanup = cluster.Migrate("cleanup");
  ASSERT_TRUE(cleanup.ok()) << cleanup.status().ToString() << cluster.logs();
  EXPECT_GT(cleanup->GetUint("deleted").value_or(0), 0u) << ToJson(*cleanup);
  ASSERT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors())
                                 << cluster.logs();

  ASSERT_NO_FATAL_FAILURE(CheckAfterKillAndRestart(cluster));
}

INSTANTIATE_TEST_SUITE_P(Workflows, ThirdNodeCoordinatorTest,
                         ::testing::Values(kMoveThird, kSplitThird),
                         [](const auto& info) { return info.param.name; });

// --- kill -9 of the coordinator node at every journal state of a move --------------------------

struct CrashCase {
  std::string point;
  std::vector<std::string> steps;
};

void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.point; }

class CoordinatorNodeCrashTest : public ::testing::TestWithParam<CrashCase> {};

// The coordinator dies (its crash point); sources and targets keep serving (a source's gate closed
// by a cutover stays closed until the coordinator is back: writes wait or time out). It is started
// again; the operator runs an interrupted rollback again, then the same move command, which goes on
// from the journal's phase to the end.
TEST_P(CoordinatorNodeCrashTest, ResumesFromItsJournalAndLosesNothing) {
  const CrashCase& c = GetParam();
  LiveMigrationProcesses cluster(kMoveThird);
  ASSERT_NO_FATAL_FAILURE(cluster.StartCoordinator(c.point.c_str()));
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget());
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(4000));
  cluster.ForgiveErrors();  // writes held at a gate the dead coordinator closed may time out
  cluster.StartTraffic(4, 300);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  bool crashed = false;
  for (const auto& step : c.steps) {
    auto r = cluster.Migrate(step);
    if (r.ok() && step == "start") r = cluster.WaitCopied();
    if (!r.ok()) {
      crashed = true;
      break;
    }
    if (step == "start" || step == "cutover") {
      ASSERT_TRUE(cluster.WaitLag(100).ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(crashed) << "the crash point " << c.point << " was not reached" << cluster.logs();
  ASSERT_EQ(cluster.coordinator().WaitExit(std::chrono::seconds(10)), 128 + SIGKILL)
      << cluster.logs();
  EXPECT_NE(cluster.coordinator().log().find("crash point " + c.point), std::string::npos);

  ASSERT_NO_FATAL_FAILURE(cluster.StartCoordinator());
  // Resumed (status resumes it if the node has not yet), the coordinator has thrown the source's
  // gate on the storage node: reopened if the cutover had not swapped the map, else retired.
  ASSERT_TRUE(cluster.Migrate("status").ok()) << cluster.logs();
  if (c.steps.back() == "cutover") {
    bool swapped = c.point == "migrate:map_swapped" || c.point == "migrate:cutover_done";
    auto gate = cluster.CallNode(cluster.storage_address(),
                                 R"({"store":"replication","v":1,"shard":"40-80","gate":"state"})");
    ASSERT_TRUE(gate.ok()) << gate.status().ToString();
    EXPECT_EQ(gate->GetString("gate"),
              std::optional<std::string_view>(swapped ? "retired" : "open"));
  }
  if (c.steps.back() == "rollback") {
    auto rollback = cluster.MigrateCli("rollback --id m1");
    ASSERT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err << cluster.logs();
    auto status = cluster.Migrate("status");
    ASSERT_TRUE(status.ok()) << status.status().ToString();
    EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("rolled_back"));
  }
  ASSERT_NO_FATAL_FAILURE(cluster.FinishWithCliAndCheck(MoveCommand(cluster)));
}

INSTANTIATE_TEST_SUITE_P(
    ThirdNodeJournalStates, CoordinatorNodeCrashTest,
    ::testing::Values(CrashCase{"migrate:copying", {"start"}},
                      CrashCase{"migrate:copied", {"start"}},
                      CrashCase{"migrate:cutover", {"start", "cutover"}},
                      CrashCase{"migrate:fenced", {"start", "cutover"}},
                      CrashCase{"migrate:map_swapped", {"start", "cutover"}},
                      CrashCase{"migrate:cutover_done", {"start", "cutover"}},
                      CrashCase{"migrate:rollback", {"start", "cutover", "rollback"}},
                      CrashCase{"migrate:fenced_back", {"start", "cutover", "rollback"}},
                      CrashCase{"migrate:map_swapped_back", {"start", "cutover", "rollback"}},
                      CrashCase{"migrate:rolled_back", {"start", "cutover", "rollback"}},
                      CrashCase{"migrate:completed", {"start", "cutover", "complete"}}),
    [](const auto& info) { return info.param.point.substr(info.param.point.find(':') + 1); });

// --- kill -9 of the source's node ----------------------------------------------------------------

// The storage node (the source's) killed (-9) during a throttled copy and again during the
// catch-up, started again each time; `start` resumes the copy (clearing the target's leftovers),
// the replicator resumes from the position stored with the target's data, and the operator's move
// command finishes. Requests in flight to the dead node count as outcome unknown.
TEST(SourceNodeCrash, TheSourceNodeKilledDuringCopyAndCatchUpLosesNothing) {
  LiveMigrationProcesses cluster(kMoveThird);
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(6000));
  cluster.ForgiveErrors();
  cluster.StartTraffic(4, 300);
  // ~1,500 rows of the range at 500 rows/s: the copy takes about 3 s.
  auto started = cluster.MigrateRaw(
      fmt::format(R"({{"migrate":"start","id":"m1","sources":["40-80"],"targets":["40-80@b"],)"
                  R"("nodes":{},"max_rows_per_s":500}})",
                  cluster.NodesJson({"40-80@b"}, {"40-80"})));
  ASSERT_TRUE(started.ok()) << started.status().ToString() << cluster.logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto during = cluster.Migrate("status");
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  EXPECT_EQ(during->GetBool("copying"), std::optional<bool>(true)) << ToJson(*during);
  uint64_t copied_before_kill = during->GetUint("rows_copied").value_or(0);
  EXPECT_GT(copied_before_kill, 0u);
  EXPECT_LT(copied_before_kill, during->GetUint("rows_to_copy").value_or(0));
  cluster.KillStorage();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto copied = cluster.WaitCopied();
    if (copied.ok() && copied->GetString("phase") == std::optional<std::string_view>("copied"))
      break;
    ASSERT_TRUE(cluster.Migrate("start").ok()) << cluster.logs();
  }
  ASSERT_EQ(cluster.Migrate("status")->GetString("phase"),
            std::optional<std::string_view>("copied"));
  // Catch-up: the source dies again while the clients write it.
  cluster.WaitOps(300);
  cluster.KillStorage();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  cluster.WaitOps(600);
  auto move = cluster.MigrateCli(MoveCommand(cluster));
  ASSERT_EQ(move.exit_code, 0) << move.out << move.err << cluster.logs();
  EXPECT_NE(move.out.find("completed"), std::string::npos) << move.out;
  cluster.WaitOps(500);
  cluster.StopTraffic();
  EXPECT_GT(cluster.errors(), 0) << "no request was cut by the source node's death";
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  EXPECT_EQ(cluster.LostPreloaded(), 0) << "of " << cluster.preloaded();
  cluster.KillAll();
  cluster.CheckStoreFiles(/*quiesced=*/false);
}

// --- bad input: refused before anything is created, naming node, store and problem -------------

// A refused start: `invalid`, the expected text, and no migration recorded.
void ExpectRefused(LiveMigrationProcesses& cluster, const std::string& id, const std::string& json,
                   const std::string& expected) {
  auto r = cluster.MigrateRaw(json);
  ASSERT_FALSE(r.ok()) << id << " was accepted: " << ToJson(*r);
  EXPECT_EQ(r.status().code(), Code::kInvalid) << r.status().ToString();
  EXPECT_NE(r.status().message().find(expected), std::string::npos)
      << "expected '" << expected << "' in: " << r.status().message();
  auto status = cluster.MigrateAs("status", id);
  EXPECT_EQ(status.status().code(), Code::kNotFound) << id << " left a migration behind";
}

// A store's replication state on its node: nothing claimed, no feed consumer, nothing replicated
// into it.
void ExpectUntouched(LiveMigrationProcesses& cluster, const std::string& url,
                     const std::string& shard) {
  auto state =
      cluster.CallNode(url, fmt::format(R"({{"store":"replication","v":1,"shard":"{}"}})", shard));
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->GetString("claimant"), std::optional<std::string_view>("")) << shard;
  EXPECT_EQ(state->GetObjectJson("consumers"), std::optional<std::string_view>("{}"))
      << shard << ": " << ToJson(*state);
  EXPECT_EQ(state->GetObjectJson("streams"), std::optional<std::string_view>("{}")) << shard;
}

TEST(ThirdNodeBadInput, EachSourceMistakeIsRefusedNamingNodeStoreAndProblemAndChangesNothing) {
  Variant variant = kMoveThird;
  // A store on the storage node that the map does not route to.
  variant.other_stores = {"40-80@old"};
  LiveMigrationProcesses cluster(variant);
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(2000));
  cluster.StartTraffic(8, 300);
  cluster.WaitOps(500);
  const std::string storage = cluster.storage_address();
  const std::string target = cluster.target_url();
  const std::string dead = fmt::format("tcp://127.0.0.1:{}", FreePorts(1)[0]);
  auto start = [](const std::string& id, const std::string& source, const std::string& nodes) {
    return fmt::format(
        R"({{"migrate":"start","id":"{}","sources":["{}"],"targets":["40-80@b"],"nodes":{}}})", id,
        source, nodes);
  };
  ExpectRefused(cluster, "unreachable",
                start("unreachable", "40-80",
                      fmt::format(R"({{"40-80":"{}","40-80@b":"{}"}})", dead, target)),
                fmt::format("source 40-80 on node {}: the node is unreachable", dead));
  ExpectRefused(
      cluster, "nostore",
      start("nostore", "40-80", fmt::format(R"({{"40-80":"{}","40-80@b":"{}"}})", target, target)),
      fmt::format("source 40-80 on node {}:", target));
  ExpectRefused(cluster, "unrouted",
                start("unrouted", "40-80@old",
                      fmt::format(R"({{"40-80@old":"{}","40-80@b":"{}"}})", storage, target)),
                fmt::format("source 40-80@old on node {}: not a shard of the current map (epoch 1)",
                            storage));
  ExpectRefused(cluster, "local",
                start("local", "40-80", fmt::format(R"({{"40-80@b":"{}"}})", target)),
                "shard 40-80: no store serves it in this node");
  ExpectRefused(
      cluster, "owner",
      start("owner", "40-80", fmt::format(R"({{"40-80":"{}","40-80@b":"{}"}})", storage, storage)),
      fmt::format("target 40-80@b on node {}: that node serves the source 40-80", storage));
  ExpectRefused(cluster, "stranger",
                start("stranger", "40-80",
                      fmt::format(R"({{"40-80":"{}","40-80@b":"{}","80-c0":"{}"}})", storage,
                                  target, storage)),
                "nodes: 80-c0 is not a source or target of this migration");
  ASSERT_NO_FATAL_FAILURE(ExpectUntouched(cluster, storage, "40-80"));
  ASSERT_NO_FATAL_FAILURE(ExpectUntouched(cluster, storage, "40-80@old"));
  ASSERT_NO_FATAL_FAILURE(ExpectUntouched(cluster, target, "40-80@b"));

  cluster.WaitOps(500);
  cluster.StopTraffic();
  EXPECT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors());
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  EXPECT_EQ(cluster.LostPreloaded(), 0) << "of " << cluster.preloaded();
}

}  // namespace
}  // namespace shardkit::migrate::testing
