// Shards moving between nodes, with real processes: the storage node (the authoritative map, four
// RocksDB shards, the migrator: the coordinator runs on the source's node), a *target* node (a
// follower of the storage node's map serving the targets, which the migrator fills over TCP with
// the replication protocol) and a router node (sending the targets' shard messages to the target
// node directly). Clients talk only to the router. The same checks as the one-node tests
// (migration_processes.h): zero client errors, every key's history linearizable, every append key
// intact, every preloaded entity read back, each shard's files holding only its range.
#include <gtest/gtest.h>

#include "migration_processes.h"
#include "shardkit/message/codec.h"

namespace shardkit::migrate::testing {
namespace {

const Variant kMove{"move", {"40-80"}, {"40-80@b"}, {}, /*remote=*/true};
const Variant kSplitRemote{"split_remote", {"40-80"}, {"40-60", "60-80"}, {}, /*remote=*/true};

class RemoteMigrationTest : public ::testing::TestWithParam<Variant> {};

// Start (the copy crosses the network), verify (a scan of the remote target), cutover under 16
// clients to a slow target node, rollback (the target's feed read back over the network, its gate
// closed on its node), cutover again, complete; then every process is killed (-9), restarted,
// and every key read back.
TEST_P(RemoteMigrationTest, UnderSixteenClientsNothingIsLostOrSeenOutOfOrder) {
  LiveMigrationProcesses cluster(GetParam());
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  // A target node much slower than the source: each replicated batch lands 20 ms late, so the
  // target is always some writes behind and the cutover must wait for it to reach the fence.
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget("20"));
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(4000));
  cluster.StartTraffic(16, 400);
  cluster.WaitOps(500);

  ASSERT_NO_FATAL_FAILURE(StartCopyAndVerify(cluster));

  cluster.WaitOps(500);
  auto cut = CaughtUpStep(cluster, "cutover", "cutover to the target node");
  ASSERT_TRUE(cut.ok()) << cut.status().ToString() << cluster.logs();
  cluster.WaitOps(1000);
  auto rollback = CaughtUpStep(cluster, "rollback", "rollback from the target node");
  ASSERT_TRUE(rollback.ok()) << rollback.status().ToString() << cluster.logs();
  EXPECT_EQ(cluster.Migrate("status")->GetString("phase"),
            std::optional<std::string_view>("rolled_back"));
  cluster.WaitOps(1000);
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  auto again = cluster.Migrate("cutover");
  ASSERT_TRUE(again.ok()) << again.status().ToString() << cluster.logs();
  cluster.WaitOps(500);
  cluster.StopTraffic();
  auto completed = cluster.Migrate("complete");
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  ASSERT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors())
                                 << cluster.logs();

  ASSERT_NO_FATAL_FAILURE(CheckAfterKillAndRestart(cluster));
}

INSTANTIATE_TEST_SUITE_P(Workflows, RemoteMigrationTest, ::testing::Values(kMove, kSplitRemote),
                         [](const auto& info) { return info.param.name; });

// The target node killed (-9) during a throttled copy and again during the catch-up, started
// again each time; the operator's `shardkit migrate move` command, run again until it exits 0,
// finishes the move. The requests cut by nothing: clients never talk to the target before the
// cutover, so none may fail.
TEST(RemoteTargetCrash, TheTargetNodeKilledDuringCopyAndCatchUpLosesNothing) {
  LiveMigrationProcesses cluster(kMove);
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(6000));
  cluster.StartTraffic(4, 300);
  // ~1,500 rows of the range at 500 rows/s: the copy takes about 3 s.
  auto started = cluster.MigrateRaw(
      fmt::format(R"({{"migrate":"start","id":"m1","sources":["40-80"],"targets":["40-80@b"],)"
                  R"("nodes":{},"max_rows_per_s":500}})",
                  cluster.NodesJson({"40-80@b"})));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto during = cluster.Migrate("status");
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  EXPECT_EQ(during->GetBool("copying"), std::optional<bool>(true)) << ToJson(*during);
  uint64_t copied_before_kill = during->GetUint("rows_copied").value_or(0);
  EXPECT_GT(copied_before_kill, 0u);
  EXPECT_LT(copied_before_kill, during->GetUint("rows_to_copy").value_or(0));
  cluster.KillTarget();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget());
  // The copy failed on the dead node (or went on on the restarted one); start resumes it.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto copied = cluster.WaitCopied();
    if (copied.ok() && copied->GetString("phase") == std::optional<std::string_view>("copied"))
      break;
    ASSERT_TRUE(cluster.Migrate("start").ok());
  }
  ASSERT_EQ(cluster.Migrate("status")->GetString("phase"),
            std::optional<std::string_view>("copied"));
  // Catch-up: the target dies again while the clients write the source.
  cluster.WaitOps(300);
  cluster.KillTarget();
  cluster.WaitOps(600);
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget());
  auto move = cluster.MigrateCli(
      fmt::format("move --id m1 --source 40-80 --target 40-80@b --node {} --cutover --complete",
                  cluster.target_url()));
  ASSERT_EQ(move.exit_code, 0) << move.out << move.err << cluster.logs();
  EXPECT_NE(move.out.find("completed"), std::string::npos) << move.out;
  cluster.WaitOps(500);
  cluster.StopTraffic();
  EXPECT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors());
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  EXPECT_EQ(cluster.LostPreloaded(), 0) << "of " << cluster.preloaded();
  cluster.KillAll();
  cluster.CheckStoreFiles(/*quiesced=*/false);
}

// The router node killed (-9) after the copy; the cutover to the target node happens while it is
// down; it comes back on the same port with the new map and sends the range to the target node.
// Only the requests cut by its death may fail.
TEST(RemoteRouterCrash, ARouterKilledAcrossTheMoveComesBackWithTheNewMapAndLosesNothing) {
  LiveMigrationProcesses cluster(kMove);
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(3000));
  cluster.ForgiveErrors();
  cluster.StartTraffic(4, 300);
  ASSERT_TRUE(cluster.Migrate("start").ok());
  ASSERT_TRUE(cluster.WaitCopied().ok());
  cluster.KillRouter();
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  auto cutover = cluster.Migrate("cutover");
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  cluster.StopTraffic();
  EXPECT_GT(cluster.errors(), 0) << "no request was cut by the router's death";
  ASSERT_TRUE(cluster.Migrate("complete").ok());
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  EXPECT_EQ(cluster.LostPreloaded(), 0) << "of " << cluster.preloaded();
  cluster.KillAll();
  cluster.CheckStoreFiles(/*quiesced=*/false);
}

// A target node far slower than the source (each batch lands 150 ms late) under 8 clients: the
// cutover is refused over the migration's lag bound, touching nothing; once the clients pause and
// the target catches up, the same cutover succeeds; the clients go on against the target node.
TEST(RemoteSlowTarget, ACutoverOverTheLagBoundIsRefusedLosesNothingAndSucceedsLater) {
  LiveMigrationProcesses cluster(kMove);
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget("150"));
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(3000));
  cluster.StartTraffic(8, 300);
  auto started = cluster.MigrateRaw(
      fmt::format(R"({{"migrate":"start","id":"m1","sources":["40-80"],"targets":["40-80@b"],)"
                  R"("nodes":{},"max_lag":3}})",
                  cluster.NodesJson({"40-80@b"})));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_TRUE(cluster.WaitCopied().ok());
  cluster.WaitOps(1000);
  auto refused = cluster.Migrate("cutover");
  ASSERT_FALSE(refused.ok()) << "a target 150 ms behind was cut over: " << ToJson(*refused);
  EXPECT_EQ(refused.status().code(), Code::kUnavailable);
  EXPECT_NE(refused.status().message().find("cutover refused: replication lag"), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("is above 3"), std::string::npos);
  auto status = cluster.Migrate("status");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("copied"));
  EXPECT_EQ(status->GetUint("epoch"), std::optional<uint64_t>(1));

  cluster.StopTraffic();
  ASSERT_TRUE(cluster.WaitLag(0).ok());
  auto cut = cluster.Migrate("cutover");
  ASSERT_TRUE(cut.ok()) << cut.status().ToString() << cluster.logs();
  cluster.StartTraffic(8, 300);
  cluster.WaitOps(1000);
  cluster.StopTraffic();
  ASSERT_TRUE(cluster.Migrate("complete").ok());
  EXPECT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors());
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  EXPECT_EQ(cluster.LostPreloaded(), 0) << "of " << cluster.preloaded();
  cluster.KillAll();
  cluster.CheckStoreFiles(/*quiesced=*/false);
}

// --- kill -9 of the coordinator (the source's node) at every journal state of a move -----------

struct CrashCase {
  std::string point;
  std::vector<std::string> steps;
};

void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.point; }

class SourceNodeCrashTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(SourceNodeCrashTest, ResumesFromItsJournalAndLosesNothing) {
  const CrashCase& c = GetParam();
  LiveMigrationProcesses cluster(kMove);
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage(c.point.c_str()));
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget());
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(6000));
  cluster.ForgiveErrors();  // requests in flight to the killed node: outcome unknown
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
  ASSERT_TRUE(crashed) << "the crash point " << c.point << " was not reached";
  ASSERT_EQ(cluster.storage().WaitExit(std::chrono::seconds(10)), 128 + SIGKILL) << cluster.logs();
  EXPECT_NE(cluster.storage().log().find("crash point " + c.point), std::string::npos);

  // The storage node comes back (router and target keep running); the operator runs the
  // interrupted rollback again if the crash was inside one (it reopens the target's gate on the
  // target node, or finishes the rollback), then the same move command, which goes on from the
  // journal's phase to the end.
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  if (c.steps.back() == "rollback") {
    auto rollback = cluster.MigrateCli("rollback --id m1");
    ASSERT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err << cluster.logs();
    auto status = cluster.Migrate("status");
    ASSERT_TRUE(status.ok()) << status.status().ToString();
    EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("rolled_back"));
  }
  ASSERT_NO_FATAL_FAILURE(cluster.FinishWithCliAndCheck(
      fmt::format("move --id m1 --source 40-80 --target 40-80@b --node {} --cutover --complete",
                  cluster.target_url())));
}

INSTANTIATE_TEST_SUITE_P(
    RemoteJournalStates, SourceNodeCrashTest,
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

// The target node killed (-9) inside a rollback, by its own crash points: right after its gate
// closed (writes held, the close never answered: the rollback is abandoned, the map stays at the
// target) and when asked to retire its gate (past the map swap: the rollback stands). It is
// started again; the operator's rollback and move commands finish the migration. Only requests in
// flight to the dead target may fail.
class TargetNodeRollbackCrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TargetNodeRollbackCrashTest, TheRollbackStandsOrIsAbandonedAndLosesNothing) {
  const std::string point = GetParam();
  LiveMigrationProcesses cluster(kMove);
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget(nullptr, point.c_str()));
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(6000));
  cluster.ForgiveErrors();  // requests in flight to the killed node: outcome unknown
  cluster.StartTraffic(4, 300);
  ASSERT_TRUE(cluster.Migrate("start").ok());
  ASSERT_TRUE(cluster.WaitCopied().ok());
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  auto cut = cluster.Migrate("cutover");
  ASSERT_TRUE(cut.ok()) << cut.status().ToString() << cluster.logs();
  cluster.WaitOps(400);
  ASSERT_TRUE(cluster.WaitLag(100).ok());

  auto rollback = cluster.Migrate("rollback");
  ASSERT_EQ(cluster.target().WaitExit(std::chrono::seconds(10)), 128 + SIGKILL) << cluster.logs();
  EXPECT_NE(cluster.target().log().find("crash point " + point), std::string::npos);
  auto status = cluster.Migrate("status");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  if (point == "gate:closed") {
    ASSERT_FALSE(rollback.ok()) << ToJson(*rollback);
    EXPECT_NE(rollback.status().message().find("rollback abandoned"), std::string::npos)
        << rollback.status().ToString();
    EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("cutover_done"));
    EXPECT_EQ(status->GetUint("epoch"), std::optional<uint64_t>(2));
  } else {
    ASSERT_TRUE(rollback.ok()) << rollback.status().ToString() << cluster.logs();
    EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("rolled_back"));
    EXPECT_EQ(status->GetUint("epoch"), std::optional<uint64_t>(3));
  }
  ASSERT_NO_FATAL_FAILURE(cluster.StartTarget());
  cluster.WaitOps(400);
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  auto again = cluster.MigrateCli("rollback --id m1");
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err << cluster.logs();
  EXPECT_EQ(cluster.Migrate("status")->GetString("phase"),
            std::optional<std::string_view>("rolled_back"));
  cluster.WaitOps(400);
  ASSERT_NO_FATAL_FAILURE(cluster.FinishWithCliAndCheck(
      fmt::format("move --id m1 --source 40-80 --target 40-80@b --node {} --cutover --complete",
                  cluster.target_url())));
}

INSTANTIATE_TEST_SUITE_P(RemoteRollback, TargetNodeRollbackCrashTest,
                         ::testing::Values("gate:closed", "gate:retiring"), [](const auto& info) {
                           return info.param.substr(info.param.find(':') + 1);
                         });

// --- bad input: refused before anything is created, naming node, store and problem -------------

// A refused start: `invalid`, the expected text, and no migration recorded.
void ExpectRefused(LiveMigrationProcesses& cluster, const std::string& id, const std::string& json,
                   const std::string& expected) {
  auto r = cluster.MigrateRaw(json);
  ASSERT_FALSE(r.ok()) << id << " was accepted: " << ToJson(*r);
  if (r.status().code() == Code::kUnavailable) FAIL() << cluster.logs();
  EXPECT_EQ(r.status().code(), Code::kInvalid) << r.status().ToString();
  EXPECT_NE(r.status().message().find(expected), std::string::npos)
      << "expected '" << expected << "' in: " << r.status().message();
  auto status = cluster.MigrateAs("status", id);
  EXPECT_EQ(status.status().code(), Code::kNotFound) << id << " left a migration behind";
}

// The target store's replication state on the target node: nothing applied, nothing claimed.
void ExpectUntouched(LiveMigrationProcesses& cluster, const std::string& shard) {
  auto state =
      cluster.CallTarget(fmt::format(R"({{"store":"replication","v":1,"shard":"{}"}})", shard));
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->GetUint("last"), std::optional<uint64_t>(0)) << shard << ": " << ToJson(*state);
  EXPECT_EQ(state->GetString("claimant"), std::optional<std::string_view>("")) << shard;
  EXPECT_EQ(state->GetObjectJson("streams"), std::optional<std::string_view>("{}")) << shard;
}

TEST(RemoteBadInput, EachMistakeIsRefusedNamingNodeStoreAndProblemAndChangesNothing) {
  LiveMigrationProcesses cluster(kSplitRemote);
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(3000));
  cluster.StartTraffic(8, 300);
  cluster.WaitOps(500);
  const std::string node = cluster.target_url();
  const std::string dead = fmt::format("tcp://127.0.0.1:{}", FreePorts(1)[0]);
  auto start = [](const std::string& id, const std::string& targets, const std::string& nodes) {
    return fmt::format(
        R"({{"migrate":"start","id":"{}","sources":["40-80"],"targets":{},"nodes":{}}})", id,
        targets, nodes);
  };
  ExpectRefused(cluster, "unreachable",
                start("unreachable", R"(["40-60","60-80"])",
                      fmt::format(R"({{"40-60":"{}","60-80":"{}"}})", dead, node)),
                fmt::format("target 40-60 on node {}: the node is unreachable", dead));
  ExpectRefused(
      cluster, "owner",
      start("owner", R"(["40-80@b"])", fmt::format(R"({{"40-80@b":"{}"}})", cluster.storage_url())),
      fmt::format("target 40-80@b on node {}: that node serves the source 40-80",
                  cluster.storage_url()));
  ExpectRefused(cluster, "nostore",
                start("nostore", R"(["40-80@zz"])", fmt::format(R"({{"40-80@zz":"{}"}})", node)),
                fmt::format("target 40-80@zz on node {}:", node));
  ExpectRefused(cluster, "cover",
                start("cover", R"(["40-60"])", fmt::format(R"({{"40-60":"{}"}})", node)),
                "targets do not own exactly the sources' ranges");
  ASSERT_NO_FATAL_FAILURE(ExpectUntouched(cluster, "40-60"));
  ASSERT_NO_FATAL_FAILURE(ExpectUntouched(cluster, "60-80"));

  // A node refuses a protocol version it does not speak, naming it; nothing is applied.
  auto v2 = cluster.CallTarget(
      R"({"store":"replicate","v":2,"shard":"60-80","stream":"s","position":1,"changes":[]})");
  ASSERT_FALSE(v2.ok());
  EXPECT_EQ(v2.status().code(), Code::kInvalid);
  EXPECT_NE(v2.status().message().find(
                "v: replication protocol version 2 is not spoken by this node (it speaks 1)"),
            std::string::npos)
      << v2.status().ToString();
  ASSERT_NO_FATAL_FAILURE(ExpectUntouched(cluster, "60-80"));

  // A target holding data (one entity applied by hand) is refused, naming node and store; the
  // other target, checked after it, stays untouched.
  auto seeded = cluster.CallTarget(
      R"({"store":"replicate","v":1,"shard":"60-80","stream":"by-hand","position":0,)"
      R"("changes":[["7000000000000000","entry","x",1,1,0,"{\"id\":\"x\",\"version\":1}"]]})");
  ASSERT_TRUE(seeded.ok()) << seeded.status().ToString();
  ExpectRefused(cluster, "full",
                start("full", R"(["40-60","60-80"])",
                      fmt::format(R"({{"40-60":"{}","60-80":"{}"}})", node, node)),
                fmt::format("target 60-80 on node {}: the store is not empty", node));
  ASSERT_NO_FATAL_FAILURE(ExpectUntouched(cluster, "40-60"));

  cluster.WaitOps(500);
  cluster.StopTraffic();
  EXPECT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors());
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  EXPECT_EQ(cluster.LostPreloaded(), 0) << "of " << cluster.preloaded();
}

// `shardkit bench split --remote` starts its source and target nodes itself (this binary) and
// moves every range to the target under client writes; a small run shows every figure, no client
// error and no acknowledged write lost.
TEST(RemoteSplitBench, MovesEveryRangeToTheTargetNodeLosingNothing) {
  TempDir dir;
  auto run = services::testing::Shell(
      dir, services::testing::Cli(
               "bench split --remote --json --entities 20000 --splits 1 --writes-per-s 500"));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto figures = ParseMessage(run.out.substr(0, run.out.find('\n')));
  ASSERT_TRUE(figures.ok()) << run.out;
  EXPECT_EQ(figures->GetDouble("moves"), 4) << run.out;
  EXPECT_GE(figures->GetDouble("rows_copied").value_or(0), 20000) << run.out;
  for (const char* name : {"copy_per_s", "local_copy_per_s", "remote_vs_local_copy_ratio",
                           "client_p99_ms_during_copy"})
    EXPECT_GT(figures->GetDouble(name).value_or(0), 0) << name << " in " << run.out;
  for (const char* name :
       {"client_errors", "lost_writes", "local_client_errors", "local_lost_writes"})
    EXPECT_EQ(figures->GetDouble(name), 0) << name << " in " << run.out;
}

}  // namespace
}  // namespace shardkit::migrate::testing
