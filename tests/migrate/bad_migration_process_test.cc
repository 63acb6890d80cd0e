// Mistyped migrations against real `shardkit serve` processes under client load (the harness of
// migration_processes.h): a target that is its source, the live shards of a newer map taken as
// targets, a second and a third migration over stores a running one uses, an existing id with
// another spec, and `complete` on a rolled-back migration. Each bad command is run as an operator
// runs it (`shardkit migrate …`) and must be refused with a message naming the store (or the
// recorded spec), and change nothing: no client error, every key's history linearizable, every
// append key intact, every entity written before the bad command still there with its value.
#include <gtest/gtest.h>

#include "migration_processes.h"

namespace shardkit::migrate::testing {
namespace {

const Variant kSplit{"split", {"40-80"}, {"40-60", "60-80"}, {"40-80@sqlite"}};

// Starts both nodes, preloads, and starts the clients.
void StartLoaded(LiveMigrationProcesses& cluster) {
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(3000));
  cluster.StartTraffic(8, 300);
  cluster.WaitOps(1000);
}

// A refused command: exit code 1 and `expected` in what it printed.
void ExpectRefused(const services::testing::ShellRun& run, const std::string& expected) {
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_NE(run.err.find(expected), std::string::npos)
      << "expected '" << expected << "' in: " << run.err;
}

// Stops the clients and checks everything they and the preload wrote.
void CheckNothingLost(LiveMigrationProcesses& cluster) {
  cluster.WaitOps(1000);
  cluster.StopTraffic();
  EXPECT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors());
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  EXPECT_GT(cluster.checked_ops(), 500u);
  EXPECT_EQ(cluster.LostPreloaded(), 0) << "of " << cluster.preloaded();
}

Result<Message> RunToCopied(LiveMigrationProcesses& cluster) {
  auto started = cluster.Migrate("start");
  if (!started.ok()) return started;
  return cluster.WaitCopied();
}

Status CutOverAndComplete(LiveMigrationProcesses& cluster) {
  if (auto lag = cluster.WaitLag(100); !lag.ok()) return lag.status();
  if (auto cut = cluster.Migrate("cutover"); !cut.ok()) return cut.status();
  if (auto lag = cluster.WaitLag(100); !lag.ok()) return lag.status();
  auto done = cluster.Migrate("complete");
  return done.ok() ? Status::Ok() : done.status();
}

TEST(BadMigration, ATargetThatIsItsSourceIsRefused) {
  LiveMigrationProcesses cluster(kSplit);
  ASSERT_NO_FATAL_FAILURE(StartLoaded(cluster));
  ExpectRefused(cluster.MigrateCli("replace --id self --source 40-80 --targets 40-80"),
                "target 40-80: it is a source of this migration");
  ASSERT_NO_FATAL_FAILURE(CheckNothingLost(cluster));
}

TEST(BadMigration, TheLiveShardsOfANewerMapAreNotTargets) {
  LiveMigrationProcesses cluster(kSplit);
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_TRUE(RunToCopied(cluster).ok());
  ASSERT_TRUE(CutOverAndComplete(cluster).ok());
  // Written after the split: 40-60 and 60-80 own the range and serve it.
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(3000));
  cluster.StartTraffic(8, 300);
  cluster.WaitOps(1000);
  ExpectRefused(cluster.MigrateCli("split --id again --source 40-80 --targets 40-60,60-80"),
                "source 40-80: not a shard of the current map (epoch 2)");
  ASSERT_NO_FATAL_FAILURE(CheckNothingLost(cluster));
}

TEST(BadMigration, MigrationsOverStoresARunningOneUsesAreRefused) {
  LiveMigrationProcesses cluster(kSplit);
  ASSERT_NO_FATAL_FAILURE(StartLoaded(cluster));
  ASSERT_TRUE(RunToCopied(cluster).ok());
  ExpectRefused(cluster.MigrateCli("split --id m2 --source 40-80 --targets 40-60,60-80"),
                "source 40-80: the store is used by migration 'm1'");
  ExpectRefused(cluster.MigrateCli("replace --id m3 --source 40-80 --targets 40-80@sqlite"),
                "source 40-80: the store is used by migration 'm1'");
  cluster.WaitOps(1000);
  ASSERT_TRUE(CutOverAndComplete(cluster).ok());
  ASSERT_NO_FATAL_FAILURE(CheckNothingLost(cluster));
  cluster.KillAll();
  cluster.CheckStoreFiles(/*quiesced=*/false);
}

TEST(BadMigration, AnExistingIdWithAnotherSpecIsAConflictShowingTheRecordedSpec) {
  LiveMigrationProcesses cluster(kSplit);
  ASSERT_NO_FATAL_FAILURE(StartLoaded(cluster));
  ASSERT_TRUE(RunToCopied(cluster).ok());
  ExpectRefused(cluster.MigrateCli("replace --id m1 --source 40-80 --targets 40-80@sqlite"),
                R"(exists with sources ["40-80"] and targets ["40-60","60-80"])");
  auto status = cluster.Migrate("status");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("copied"));
  ASSERT_TRUE(CutOverAndComplete(cluster).ok());
  ASSERT_NO_FATAL_FAILURE(CheckNothingLost(cluster));
}

TEST(BadMigration, CompleteIsRefusedOnARolledBackMigrationAndCancelKeepsTheSources) {
  LiveMigrationProcesses cluster(kSplit);
  ASSERT_NO_FATAL_FAILURE(StartLoaded(cluster));
  ASSERT_TRUE(RunToCopied(cluster).ok());
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  ASSERT_TRUE(cluster.Migrate("cutover").ok());
  cluster.WaitOps(1000);
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  ASSERT_TRUE(cluster.Migrate("rollback").ok());
  ExpectRefused(cluster.MigrateCli("complete --id m1"),
                "complete refused: the migration is rolled_back");
  auto status = cluster.Migrate("status");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("rolled_back"));
  auto cancel = cluster.MigrateCli("cancel --id m1");
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_NO_FATAL_FAILURE(CheckNothingLost(cluster));
}

}  // namespace
}  // namespace shardkit::migrate::testing
