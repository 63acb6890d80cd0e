// The proof of live migration with real processes (live shard split, merge and replace).
//
// Two `shardkit serve` processes: the *storage* node (the authoritative shard map, four RocksDB
// shards -40, 40-80, 80-c0, c0-, the migration targets and the migrator) and the *router* node (a
// shard-map follower of the storage node's map and a shard router; every shard message goes to the
// storage node over TCP). Client threads in this process talk only to the router, over TCP:
// saves of unique values, loads and removes on shared keys (many writers per key) and appends on
// single-owner keys. Every operation is recorded with its call and return times.
//
// While they run, the migration is driven by migrate:* messages to the storage node: start (copy,
// catch-up), verify, cutover, rollback, cutover again, complete. Then both processes are killed
// with SIGKILL and restarted, every key is read back, and:
//   - no client saw an error (the router's map is stale after each switch: it gets wrong_shard,
//     pulls the new map and retries, invisibly);
//   - every key's history is linearizable (linearizability.h), final reads included, so every
//     acknowledged write is present at its final value;
//   - every append key equals the concatenation of its acknowledged appends;
//   - with the processes stopped, the stores' files are opened directly: the targets together
//     hold exactly what the sources hold in the moved range, and no shard holds a key outside
//     its range.
// Repeated as a split, a replace RocksDB -> SQLite and a merge. The crash variants kill the
// storage node (the coordinator, the sources and the targets) at every journal state of the
// workflow with a crash point (SHARDKIT_CRASH_POINT), restart it — the migrator resumes from its
// journal — finish the migration and check the same properties, the operations interrupted by the
// crash counting as outcome unknown. After each crash the same `shardkit migrate` command line
// is run again and must finish the migration from the journal's phase.
#include <gtest/gtest.h>

#include "migration_processes.h"

namespace shardkit::migrate::testing {
namespace {

// --- the full workflow under 16 clients --------------------------------------------------------

class LiveMigrationProcessTest : public ::testing::TestWithParam<Variant> {};

TEST_P(LiveMigrationProcessTest, UnderSixteenClientsNothingIsLostDuplicatedOrSeenOutOfOrder) {
  LiveMigrationProcesses cluster(GetParam());
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(4000));
  // 16 clients × 650 ops/s: ~10,400 ops/s offered; what is achieved is printed (the clients,
  // the router and the storage node share 2 cores).
  const auto traffic_started = Clock::now();
  cluster.StartTraffic(16, 650);
  cluster.WaitOps(500);

  auto started = cluster.Migrate("start");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto copied = cluster.WaitCopied();
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(copied->GetString("phase"), std::optional<std::string_view>("copied"));
  EXPECT_GT(copied->GetUint("rows_copied").value_or(0), 0u);
  auto verified = cluster.Migrate("verify");
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->GetBool("ok"), std::optional<bool>(true)) << ToJson(*verified);

  for (const char* op : {"cutover", "rollback", "cutover"}) {
    cluster.WaitOps(500);
    ASSERT_TRUE(cluster.WaitLag(100).ok());
    auto r = cluster.Migrate(op);
    ASSERT_TRUE(r.ok()) << op << ": " << r.status().ToString() << cluster.logs();
    std::printf("%s: epoch %llu, pause %.1f ms\n", op,
                static_cast<unsigned long long>(r->GetUint("epoch").value_or(0)),
                r->GetDouble("pause_ms").value_or(-1));
  }
  cluster.WaitOps(500);
  cluster.StopTraffic();
  const double traffic_s = std::chrono::duration<double>(Clock::now() - traffic_started).count();
  std::printf("%zu operations in %.1f s: %.0f ops/s achieved\n", cluster.operations(), traffic_s,
              cluster.operations() / traffic_s);
  // The reverse replication carries the targets' last writes back before it stops.
  ASSERT_TRUE(cluster.WaitLag(0).ok());
  auto completed = cluster.Migrate("complete");
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  EXPECT_EQ(completed->GetString("phase"), std::optional<std::string_view>("completed"));

  EXPECT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors());
  // Every process restarted (kill -9), then every key read back and checked; the traffic had
  // stopped before `complete`.
  ASSERT_NO_FATAL_FAILURE(CheckAfterKillAndRestart(cluster, /*quiesced=*/true));
}

INSTANTIATE_TEST_SUITE_P(
    Workflows, LiveMigrationProcessTest,
    ::testing::Values(Variant{"split", {"40-80"}, {"40-60", "60-80"}},
                      Variant{"replace_rocksdb_with_sqlite", {"40-80"}, {"40-80@sqlite"}},
                      Variant{"merge", {"80-c0", "c0-"}, {"80-"}}),
    [](const auto& info) { return info.param.name; });

// The router process killed (-9) between the copy and the cutover and started again after it: its
// clients fail while it is down (outcome unknown), then carry on through the new router, which
// starts with the new map; rollback and completion follow; nothing acknowledged is lost.
TEST(RouterCrash, ARouterKilledAcrossTheCutoverComesBackWithTheNewMapAndLosesNothing) {
  LiveMigrationProcesses cluster(Variant{"split", {"40-80"}, {"40-60", "60-80"}});
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
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());  // same port: the clients reconnect
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  ASSERT_TRUE(cluster.Migrate("rollback").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  ASSERT_TRUE(cluster.Migrate("cutover").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  cluster.StopTraffic();
  EXPECT_GT(cluster.errors(), 0) << "no request was cut by the router's death";
  ASSERT_TRUE(cluster.WaitLag(0).ok());
  ASSERT_TRUE(cluster.Migrate("complete").ok());
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  cluster.KillAll();
  cluster.CheckStoreFiles();
}

// --- kill -9 of the coordinator at every journal state ----------------------------------------

struct CrashCase {
  std::string point;               // SHARDKIT_CRASH_POINT
  std::vector<std::string> steps;  // migrate ops that run (one of them reaches the point)
};

void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.point; }

class CoordinatorCrashTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CoordinatorCrashTest, ResumesFromItsJournalAndLosesNothing) {
  const CrashCase& c = GetParam();
  LiveMigrationProcesses cluster(Variant{"split", {"40-80"}, {"40-60", "60-80"}});
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage(c.point.c_str()));
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(6000));
  cluster.ForgiveErrors();  // the requests in flight when the node dies fail: outcome unknown
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
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(crashed) << "the crash point " << c.point << " was not reached";
  int exit_code = cluster.storage().WaitExit(std::chrono::seconds(10));
  ASSERT_EQ(exit_code, 128 + SIGKILL) << cluster.logs();
  EXPECT_NE(cluster.storage().log().find("crash point " + c.point), std::string::npos);

  // Restart the storage node (the router keeps running and reconnects); the migrator resumes.
  // The operator runs the interrupted command again: a rollback first if the crash was inside
  // one, then the same split command line, which goes on from the journal's phase to the end.
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  if (c.steps.back() == "rollback") {
    auto rollback = cluster.MigrateCli("rollback --id m1");
    ASSERT_EQ(rollback.exit_code, 0) << rollback.err << cluster.logs();
    auto status = cluster.Migrate("status");
    ASSERT_TRUE(status.ok()) << status.status().ToString();
    EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("rolled_back"));
  }
  ASSERT_NO_FATAL_FAILURE(cluster.FinishWithCliAndCheck(
      "split --id m1 --sources 40-80 --targets 40-60,60-80 --cutover --complete"));
}

INSTANTIATE_TEST_SUITE_P(
    JournalStates, CoordinatorCrashTest,
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
    [](const auto& info) {
      std::string name = info.param.point.substr(info.param.point.find(':') + 1);
      return name;
    });

}  // namespace
}  // namespace shardkit::migrate::testing
