// The rules of sources, targets and ids (docs/migration.md), in process: a migration that would
// touch a store that serves, holds data or belongs to another migration is refused before
// anything changes, under client load; an id names one spec; complete is refused on a rolled-back
// migration; the one place that clears data refuses a store the map routes to; and replication
// after a swap starts at the swap, so cutover -> rollback -> cutover -> complete on 100,000
// entities succeeds at once with feeds growing only by what clients wrote.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <shardkit/store/keyspace.h>

#include "in_process_cluster.h"

namespace shardkit::migrate {
namespace {

using namespace std::chrono_literals;
using inproc::Cluster;
using inproc::Engine;
using inproc::EntField;
using inproc::WaitOps;
using inproc::Workload;
using ::testing::HasSubstr;

store::SaveRequest Entity(std::string kind, std::string id, std::string json) {
  store::SaveRequest r;
  r.kind = std::move(kind);
  r.id = std::move(id);
  r.ent = std::move(json);
  return r;
}

uint64_t Count(store::EntityStore& s) {
  uint64_t n = 0;
  EXPECT_TRUE(s.ScanRange("", {}, [&](const store::EntityRecord&) { return ++n > 0; }).ok());
  return n;
}

// Saves `n` entities through the router; their ids and values, for CheckEntities.
std::map<std::string, std::string> Fill(Cluster& c, int n, const std::string& prefix) {
  std::map<std::string, std::string> written;
  for (int i = 0; i < n; ++i) {
    std::string id = fmt::format("{}{}", prefix, i);
    auto r = c.Act(
        fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","v":"{}"}}}})", id, i));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    written[id] = std::to_string(i);
  }
  return written;
}

// Every entity written before the bad command, read back through the router: the number missing
// or with another value.
int LostEntities(Cluster& c, const std::map<std::string, std::string>& written) {
  int lost = 0;
  for (const auto& [id, value] : written) {
    auto r = c.Act(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id));
    if (EntField(r, "v") != value) ++lost;
  }
  return lost;
}

// What a bad Open answered. If it was accepted, the migration starts as the bad command would
// have started it, so the checks that follow see what the acceptance did.
Status Refusal(Result<std::unique_ptr<Migration>>& opened) {
  if (!opened.ok()) return opened.status();
  (void)(*opened)->Start();
  return Status::Ok();
}

// The clients saw no error and read no stale value; every acknowledged write is there.
void CheckClients(Workload& load) {
  load.Stop();
  EXPECT_EQ(load.errors, 0) << (load.error_samples.empty() ? "" : load.error_samples[0]);
  load.Verify();
}

TEST(MigrationRules, ATargetThatIsItsSourceIsRefusedAndTheSourceKeepsEverything) {
  Cluster c({"-80", "80-"});
  auto written = Fill(c, 2000, "e");
  Workload load(c, 4);
  WaitOps(load, 500);
  MigrationSpec spec = c.Spec("self", {c.shards["-80"]}, {c.shards["-80"]});
  auto m = Migration::Open(spec);
  Status refused = Refusal(m);
  EXPECT_EQ(refused.code(), Code::kInvalid) << "a migration into its own source was accepted";
  EXPECT_THAT(refused.message(), HasSubstr("target -80: it is a source of this migration"));
  EXPECT_FALSE(std::filesystem::exists(spec.journal_path)) << "a refusal must change nothing";
  WaitOps(load, 500);
  CheckClients(load);
  EXPECT_EQ(LostEntities(c, written), 0) << "of " << written.size();
}

TEST(MigrationRules, ShardsOfANewerMapAreNotTargetsOfTheRetiredSource) {
  Cluster c({"-80", "80-"});
  Participant low = c.shards["-80"];
  Participant a = c.AddShard("-40", Engine::kRocksDb);
  Participant b = c.AddShard("40-80", Engine::kRocksDb);
  auto split = Migration::Open(c.Spec("split", {low}, {a, b}));
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  ASSERT_TRUE((*split)->Start().ok());
  ASSERT_TRUE((*split)->WaitForLag(0, 10s));
  ASSERT_TRUE((*split)->Cutover().ok());
  ASSERT_TRUE((*split)->Complete().ok());
  auto written = Fill(c, 1500, "after");  // on -40 and 40-80 only
  Workload load(c, 4);
  WaitOps(load, 500);
  auto again = Migration::Open(c.Spec("again", {low}, {a, b}));
  Status refused = Refusal(again);
  EXPECT_EQ(refused.code(), Code::kInvalid)
      << "the live shards of epoch 2 were taken as new targets";
  EXPECT_THAT(refused.message(), HasSubstr("source -80: not a shard of the current map (epoch 2)"));
  WaitOps(load, 500);
  CheckClients(load);
  EXPECT_EQ(LostEntities(c, written), 0) << "of " << written.size();
}

TEST(MigrationRules, ASecondMigrationOverTheSameStoresIsRefusedUntilTheFirstIsCancelled) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kRocksDb);
  Participant b = c.AddShard("c0-", Engine::kRocksDb);
  Participant other = c.AddShard("80-@other", Engine::kSqlite);
  auto written = Fill(c, 2000, "e");
  Workload load(c, 4);
  auto first = Migration::Open(c.Spec("first", {c.shards["80-"]}, {a, b}));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE((*first)->Start().ok());
  WaitOps(load, 500);
  auto same = Migration::Open(c.Spec("second", {c.shards["80-"]}, {a, b}));
  Status refused = Refusal(same);
  EXPECT_EQ(refused.code(), Code::kInvalid)
      << "a second migration into the same targets was accepted";
  EXPECT_THAT(refused.message(), HasSubstr("source 80-: the store is used by migration 'first'"));
  auto elsewhere = Migration::Open(c.Spec("third", {c.shards["80-"]}, {other}));
  refused = Refusal(elsewhere);
  EXPECT_EQ(refused.code(), Code::kInvalid) << "a third migration of the same source was accepted";
  EXPECT_THAT(refused.message(), HasSubstr("source 80-: the store is used by migration 'first'"));
  // The first goes on untouched; once cancelled, its stores are free again.
  ASSERT_TRUE((*first)->WaitForLag(100, 10s));
  auto verified = (*first)->Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok());
  ASSERT_TRUE((*first)->Cancel().ok());
  auto after = Migration::Open(c.Spec("fourth", {c.shards["80-"]}, {other}));
  EXPECT_TRUE(after.ok()) << after.status().ToString();
  WaitOps(load, 500);
  CheckClients(load);
  EXPECT_EQ(LostEntities(c, written), 0) << "of " << written.size();
}

TEST(MigrationRules, ATargetThatHoldsAnythingIsRefusedAndKeepsIt) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kRocksDb);
  Participant b = c.AddShard("c0-", Engine::kMemory);
  ASSERT_TRUE(a.store->Save(Entity("note", "kept", R"({"v":"mine"})")).ok());
  auto m = Migration::Open(c.Spec("full", {c.shards["80-"]}, {a, b}));
  Status refused = Refusal(m);
  EXPECT_EQ(refused.code(), Code::kInvalid);
  EXPECT_THAT(refused.message(), HasSubstr("target 80-c0: the store is not empty: it holds"));
  EXPECT_TRUE(a.store->Load("note", "kept").ok()) << "the refused target lost its data";

  // No entity left, but a change feed: the store has served before.
  Participant d = c.AddShard("80-@used", Engine::kMemory);
  ASSERT_TRUE(d.store->Save(Entity("note", "gone", "{}")).ok());
  ASSERT_TRUE(d.store->Remove("note", "gone").ok());
  auto used = Migration::Open(c.Spec("used", {c.shards["80-"]}, {d}));
  refused = Refusal(used);
  EXPECT_EQ(refused.code(), Code::kInvalid);
  EXPECT_THAT(refused.message(),
              HasSubstr("target 80-@used: the store is not empty: its change feed holds 2"));
}

TEST(MigrationRules, TheSameIdWithAnotherSpecIsAConflictShowingTheRecordedSpec) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kMemory);
  Participant b = c.AddShard("c0-", Engine::kMemory);
  Participant other = c.AddShard("80-@other", Engine::kMemory);
  {
    auto m = Migration::Open(c.Spec("m1", {c.shards["80-"]}, {a, b}));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_TRUE((*m)->Start().ok());
  }
  {  // one Migration per journal at a time: closed before the resume below
    auto changed = Migration::Open(c.Spec("m1", {c.shards["80-"]}, {other}));
    Status refused = changed.ok() ? Status::Ok() : changed.status();
    EXPECT_EQ(refused.code(), Code::kConflict) << "another spec under an existing id was taken";
    EXPECT_THAT(refused.message(),
                HasSubstr(R"(exists with sources ["80-"] and targets ["80-c0","c0-"])"));
  }
  // The same spec resumes, in either order.
  auto same = Migration::Open(c.Spec("m1", {c.shards["80-"]}, {b, a}));
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ((*same)->phase(), Phase::kCopied);
}

TEST(MigrationRules, CompleteIsRefusedAfterARollbackAndCancelLeavesTheSourcesServing) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kRocksDb);
  Participant b = c.AddShard("c0-", Engine::kRocksDb);
  auto written = Fill(c, 1000, "e");
  Workload load(c, 4);
  auto m = Migration::Open(c.Spec("back", {c.shards["80-"]}, {a, b}));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Start().ok());
  EXPECT_EQ(c.shards["80-"].store->feed().Consumers().size(), 2u);  // one per target
  ASSERT_TRUE((*m)->WaitForLag(100, 10s));
  ASSERT_TRUE((*m)->Cutover().ok());
  WaitOps(load, 500);
  ASSERT_TRUE((*m)->WaitForLag(100, 10s));
  ASSERT_TRUE((*m)->Rollback().ok());
  Status completed = (*m)->Complete();
  EXPECT_EQ(completed.code(), Code::kInvalid) << "complete was accepted on a rolled-back migration";
  EXPECT_THAT(completed.message(), HasSubstr("complete refused: the migration is rolled_back"));
  EXPECT_EQ((*m)->phase(), Phase::kRolledBack);
  // A repeated rollback answers the state it left.
  EXPECT_TRUE((*m)->Rollback().ok());
  ASSERT_TRUE((*m)->Cancel().ok());
  EXPECT_NE(c.map_->Current()->Find("80-"), nullptr) << "the sources no longer serve";
  // A cancelled migration's feed consumers end with it: none is left to hold back trimming.
  for (const auto& store : {c.shards["80-"].store, a.store, b.store})
    EXPECT_TRUE(store->feed().Consumers().empty());
  WaitOps(load, 500);
  CheckClients(load);
  EXPECT_EQ(LostEntities(c, written), 0) << "of " << written.size();
}

// A journal made to say "created" after the cutover (a bug, a bad restore): the copy would empty
// the targets, which now serve. The one place that clears refuses, and nothing is lost.
TEST(MigrationRules, TheOnlyClearRefusesAStoreTheMapRoutesTo) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kRocksDb);
  Participant b = c.AddShard("c0-", Engine::kRocksDb);
  auto written = Fill(c, 1000, "e");
  MigrationSpec spec = c.Spec("guard", {c.shards["80-"]}, {a, b});
  {
    auto m = Migration::Open(spec);
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE((*m)->Start().ok());
    ASSERT_TRUE((*m)->WaitForLag(0, 10s));
    ASSERT_TRUE((*m)->Cutover().ok());
  }
  auto more = Fill(c, 500, "late");  // on the targets only
  {
    std::ifstream in(spec.journal_path);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    auto pos = text.find("\"cutover_done\"");
    ASSERT_NE(pos, std::string::npos);
    text.replace(pos, 14, "\"created\"");
    std::ofstream(spec.journal_path) << text;
  }
  uint64_t before = Count(*a.store) + Count(*b.store);
  auto m = Migration::Open(spec);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  Status started = (*m)->Start();
  EXPECT_FALSE(started.ok()) << "the copy cleared a store the map routes to";
  EXPECT_THAT(started.message(), HasSubstr("refusing to clear shard 80-c0"));
  EXPECT_EQ(Count(*a.store) + Count(*b.store), before);
  EXPECT_EQ(LostEntities(c, written), 0);
  EXPECT_EQ(LostEntities(c, more), 0);
}

// 100,000 entities on the source: each swap succeeds at once, within the default lag bound, and
// every feed grows by at most what clients wrote plus a constant per swap.
class SwapCycle : public ::testing::TestWithParam<bool> {};

TEST_P(SwapCycle, CutoverRollbackCutoverCompleteSucceedAtOnceAndFeedsGrowOnlyByClientWrites) {
  const bool with_load = GetParam();
  Cluster c({"-80", "80-"});
  Participant source = c.shards["80-"];
  Participant a = c.AddShard("80-c0", Engine::kRocksDb);
  Participant b = c.AddShard("c0-", Engine::kRocksDb);
  std::vector<store::SaveRequest> batch;
  for (int i = 0, n = 0; n < 100'000; ++i) {
    std::string id = fmt::format("bulk{}", i);
    if (store::Ksid(id) < 0x8000000000000000ull) continue;  // the source owns 80- only
    batch.push_back(Entity("bulk", id, fmt::format(R"({{"v":{}}})", i)));
    ++n;
    if (batch.size() == 1000) {
      for (const auto& r : source.store->SaveBatch(batch)) ASSERT_TRUE(r.ok());
      batch.clear();
    }
  }
  auto m = Migration::Open(c.Spec("cycle", {source}, {a, b}));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE((*m)->Start().ok());
  EXPECT_EQ((*m)->progress().rows_copied, 100'000u);
  ASSERT_TRUE((*m)->WaitForLag(100, 30s));
  std::optional<Workload> load;
  if (with_load) load.emplace(c, 4);
  const int writes_before = load ? load->writes.load() : 0;
  const uint64_t source_before = source.store->feed().LastSequence();
  const uint64_t targets_before = a.store->feed().LastSequence() + b.store->feed().LastSequence();
  // One step right after the other: no waiting for the replication to catch up.
  auto cut = (*m)->Cutover();
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  if (load) WaitOps(*load, 300);
  auto back = (*m)->Rollback();
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  if (load) WaitOps(*load, 300);
  auto again = (*m)->Cutover();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  if (load) {
    WaitOps(*load, 300);
    load->Stop();
  }
  ASSERT_TRUE((*m)->WaitForLag(0, 10s));
  ASSERT_TRUE((*m)->Complete().ok());
  const uint64_t writes = load ? load->writes.load() - writes_before : 0;
  const uint64_t source_growth = source.store->feed().LastSequence() - source_before;
  const uint64_t targets_growth =
      a.store->feed().LastSequence() + b.store->feed().LastSequence() - targets_before;
  // A swap appends one move marker to each old owner's feed.
  const uint64_t per_swap = 4, swaps = 3;
  std::printf("client writes %llu, source feed +%llu, targets' feeds +%llu\n",
              static_cast<unsigned long long>(writes),
              static_cast<unsigned long long>(source_growth),
              static_cast<unsigned long long>(targets_growth));
  EXPECT_LE(source_growth, writes + per_swap * swaps);
  EXPECT_LE(targets_growth, writes + per_swap * swaps);
  if (load) {
    EXPECT_EQ(load->errors, 0) << (load->error_samples.empty() ? "" : load->error_samples[0]);
    load->Verify();
  }
}

INSTANTIATE_TEST_SUITE_P(Load, SwapCycle, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "UnderLoad" : "Idle"; });

}  // namespace
}  // namespace shardkit::migrate
