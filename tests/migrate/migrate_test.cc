// Live split, merge and replace under concurrent clients: zero client-visible errors, every
// acknowledged write present exactly once at its final value, append keys equal to the
// concatenation of their acknowledged appends; rollback; resuming after a coordinator crash;
// refused and abandoned cutovers losing nothing.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <shardkit/cache/entity_cache.h>
#include <shardkit/cache/feed_follower.h>
#include <shardkit/message/bus.h>
#include <shardkit/message/codec.h>
#include <shardkit/migrate/migration.h>
#include <shardkit/shard/shard_router.h>
#include <shardkit/store/keyspace.h>
#include <shardkit/store/service.h>

#include "in_process_cluster.h"

namespace shardkit::migrate {
namespace {

using namespace std::chrono_literals;
using inproc::Cluster;
using inproc::Engine;
using inproc::EntField;
using inproc::WaitOps;
using inproc::Workload;

TEST(LiveMigration, SplitUnderLoadRollBackSplitAgainLosesNoWrite) {
  Cluster c({"-40", "40-80", "80-c0", "c0-"});
  Participant a = c.AddShard("40-60", Engine::kRocksDb);
  Participant b = c.AddShard("60-80", Engine::kRocksDb);
  Workload load(c, 8);
  WaitOps(load, 2000);
  auto m = Migration::Open(c.Spec("split1", {c.shards["40-80"]}, {a, b}));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE((*m)->Start().ok());
  EXPECT_GT((*m)->progress().rows_copied, 0u);
  WaitOps(load, 2000);
  auto verified = (*m)->Verify();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_TRUE(verified->ok()) << "missing " << verified->missing << " extra " << verified->extra
                              << " different " << verified->different;
  EXPECT_GT(verified->compared, 0u);
  ASSERT_TRUE((*m)->WaitForLag(100, 10s));
  auto cut = (*m)->Cutover();
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(cut->epoch, 2u);
  EXPECT_EQ(c.map_->Current()->shards().size(), 5u);
  WaitOps(load, 2000);
  auto back = (*m)->Rollback();
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(c.map_->Current()->Find("40-80") != nullptr, true);
  WaitOps(load, 2000);
  ASSERT_TRUE((*m)->WaitForLag(100, 10s));
  auto again = (*m)->Cutover();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  WaitOps(load, 2000);
  ASSERT_TRUE((*m)->Complete().ok());
  load.Stop();
  EXPECT_EQ(load.errors, 0) << (load.error_samples.empty() ? "" : load.error_samples[0]);
  load.Verify();
  EXPECT_EQ((*m)->phase(), Phase::kCompleted);
  // Only the targets took writes for 40-80 after the last cutover; other shards untouched by it.
  EXPECT_EQ(c.map_->Current()->epoch(), 4u);
  fmt::print("split: pauses {:.1f} ms, {:.1f} ms, {:.1f} ms over {} client ops\n", cut->pause_ms,
             back->pause_ms, again->pause_ms, load.ops.load());
}

TEST(LiveMigration, MergeTwoShardsUnderLoad) {
  Cluster c({"-40", "40-80", "80-c0", "c0-"});
  Participant merged = c.AddShard("-80", Engine::kRocksDb);
  Workload load(c, 6);
  WaitOps(load, 2000);
  auto m = Migration::Open(c.Spec("merge", {c.shards["-40"], c.shards["40-80"]}, {merged}));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE((*m)->Start().ok());
  ASSERT_TRUE((*m)->WaitForLag(100, 10s));
  auto cut = (*m)->Cutover();
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  WaitOps(load, 2000);
  ASSERT_TRUE((*m)->Complete().ok());
  // A completed migration's feed consumers end with it: none is left to hold back trimming.
  for (const auto& store : {c.shards["-40"].store, c.shards["40-80"].store, merged.store})
    EXPECT_TRUE(store->feed().Consumers().empty());
  load.Stop();
  EXPECT_EQ(load.errors, 0) << (load.error_samples.empty() ? "" : load.error_samples[0]);
  load.Verify();
  EXPECT_EQ(c.map_->Current()->shards().size(), 3u);
}

TEST(LiveMigration, ReplaceRocksDbWithSqliteUnderLoad) {
  Cluster c({"-80", "80-"});
  Participant sqlite = c.AddShard("80-@sqlite", Engine::kSqlite);
  Workload load(c, 6);
  WaitOps(load, 2000);
  auto m = Migration::Open(c.Spec("replace", {c.shards["80-"]}, {sqlite}));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE((*m)->Start().ok());
  ASSERT_TRUE((*m)->WaitForLag(100, 10s));
  auto cut = (*m)->Cutover();
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_NE(c.map_->Current()->Find("80-@sqlite"), nullptr);
  WaitOps(load, 2000);
  ASSERT_TRUE((*m)->Complete().ok());
  load.Stop();
  EXPECT_EQ(load.errors, 0) << (load.error_samples.empty() ? "" : load.error_samples[0]);
  load.Verify();
  // The SQLite store now holds the range's data.
  uint64_t in_sqlite = 0;
  ASSERT_TRUE(
      sqlite.store->ScanRange("", {}, [&](const store::EntityRecord&) { return ++in_sqlite > 0; })
          .ok());
  EXPECT_GT(in_sqlite, 0u);
}

// A target store whose replicated applies take `delay` each: replication lags deterministically.
class SlowApplyStore final : public store::EntityStore {
 public:
  SlowApplyStore(std::shared_ptr<store::EntityStore> inner, std::chrono::milliseconds delay)
      : inner_(std::move(inner)), delay_(delay) {}
  Result<std::string> Save(const store::SaveRequest& r, std::string_view key = {}) override {
    return inner_->Save(r, key);
  }
  std::vector<Result<std::string>> SaveBatch(const std::vector<store::SaveRequest>& r,
                                             std::string_view key = {}) override {
    return inner_->SaveBatch(r, key);
  }
  Result<std::string> Load(std::string_view kind, std::string_view id) override {
    return inner_->Load(kind, id);
  }
  std::vector<Result<std::string>> LoadBatch(const std::vector<store::EntityRef>& r) override {
    return inner_->LoadBatch(r);
  }
  Result<store::ListPage> List(const store::Query& q) override { return inner_->List(q); }
  Result<std::string> Remove(std::string_view kind, std::string_view id,
                             std::string_view key = {}) override {
    return inner_->Remove(kind, id, key);
  }
  Result<std::vector<std::string>> RemoveWhere(const store::Query& q,
                                               std::string_view key = {}) override {
    return inner_->RemoveWhere(q, key);
  }
  Status ScanRange(std::string_view kind, store::KsidRange range,
                   const std::function<bool(const store::EntityRecord&)>& visit) override {
    return inner_->ScanRange(kind, range, visit);
  }
  Result<uint64_t> PurgeExpired() override { return inner_->PurgeExpired(); }
  store::ChangeFeed& feed() override { return inner_->feed(); }
  Status ApplyReplicated(std::string_view stream, const std::vector<store::ChangeRecord>& changes,
                         uint64_t position, bool assume_absent) override {
    ++applies_started;
    std::this_thread::sleep_for(delay_);
    return inner_->ApplyReplicated(stream, changes, position, assume_absent);
  }
  Result<uint64_t> ReplicatedPosition(std::string_view stream) override {
    return inner_->ReplicatedPosition(stream);
  }
  Result<std::map<std::string, uint64_t>> ReplicatedStreams() override {
    return inner_->ReplicatedStreams();
  }
  Status Claim(std::string_view owner) override { return inner_->Claim(owner); }
  Status ReleaseClaim(std::string_view owner) override { return inner_->ReleaseClaim(owner); }
  Result<std::string> Claimant() override { return inner_->Claimant(); }

  std::atomic<int> applies_started{0};

 private:
  std::shared_ptr<store::EntityStore> inner_;
  std::chrono::milliseconds delay_;
};

TEST(LiveMigration, ACutoverOverTheLagLimitIsRefusedAndLosesNothing) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kMemory);
  Participant b = c.AddShard("c0-", Engine::kMemory);
  Workload load(c, 4);
  a.store = std::make_shared<SlowApplyStore>(a.store, 300ms);
  MigrationSpec spec = c.Spec("refused", {c.shards["80-"]}, {a, b});
  spec.cutover.max_lag = 0;
  spec.cutover.fence_timeout = 0ms;
  auto m = Migration::Open(std::move(spec));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Start().ok());
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    WaitOps(load, 50);
    if (refused == 0) {
      // A change on the source while the targets apply slowly: the lag check sees it, however
      // fast or slow the machine.
      ASSERT_TRUE(c.shards["80-"].store->Save({"burst", fmt::format("b{}", i), "{}"}).ok());
    }
    auto cut = (*m)->Cutover();
    if (!cut.ok()) {
      ++refused;
      EXPECT_TRUE(cut.status().code() == Code::kUnavailable ||
                  cut.status().code() == Code::kTimeout)
          << cut.status().ToString();
    } else {
      break;
    }
  }
  EXPECT_GT(refused, 0);
  WaitOps(load, 500);
  load.Stop();
  EXPECT_EQ(load.errors, 0) << (load.error_samples.empty() ? "" : load.error_samples[0]);
  load.Verify();
}

// After a cutover the sources take the reverse stream; with it behind, a rollback is refused, and
// the refusal names the rollback.
// A migration's consumer dropped for lagging (as a retention round does it: removed, then the
// feed trimmed past it): the replicator stops with a clear error, the cutover is refused with it
// and changes nothing, and the migration is cancelled and started again.
TEST(LiveMigration, AReplicatorTrimmedPastFailsTheCutoverClearlyAndAFreshStartWorks) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kMemory);
  Participant b = c.AddShard("c0-", Engine::kMemory);
  auto slow = std::make_shared<SlowApplyStore>(a.store, 300ms);
  a.store = slow;
  auto source = c.shards["80-"].store;
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(source->Save({"item", fmt::format("i{}", i), "{}"}).ok());
  auto m = Migration::Open(c.Spec("trimmed", {c.shards["80-"]}, {a, b}));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Start().ok());
  // The slow target's replicator takes a first change and sleeps in its apply; more changes
  // follow, and the feed is trimmed past all of them before it reads again.
  const int started = slow->applies_started.load();
  ASSERT_TRUE(source->Save({"item", "first", "{}"}).ok());
  for (int i = 0; i < 500 && slow->applies_started.load() == started; ++i)
    std::this_thread::sleep_for(2ms);
  ASSERT_GT(slow->applies_started.load(), started);
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(source->Save({"item", fmt::format("late{}", i), "{}"}).ok());
  for (const auto& [name, position] : source->feed().Consumers())
    ASSERT_TRUE(source->feed().RemoveConsumer(name).ok());
  ASSERT_TRUE(source->feed().RegisterConsumer("trim", source->feed().LastSequence() + 1).ok());
  ASSERT_GT(*source->feed().TrimFeed(), 0u);
  ASSERT_TRUE(source->feed().RemoveConsumer("trim").ok());

  auto cut = (*m)->Cutover();
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), Code::kUnavailable) << cut.status().ToString();
  EXPECT_THAT(cut.status().message(),
              ::testing::HasSubstr("fell behind beyond max_consumer_lag_ms"));
  EXPECT_THAT(cut.status().message(),
              ::testing::HasSubstr("cancel the migration and start it again"));
  EXPECT_NE(c.map_->Current()->Find("80-"), nullptr) << "the source no longer serves";
  ASSERT_TRUE((*m)->Cancel().ok());

  // Started again, onto fresh targets (the cancelled ones hold the first copy).
  for (const char* range : {"80-c0", "c0-"}) {
    // The guard's override, then the store's route under it.
    for (int layer = 0; layer < 2; ++layer)
      ASSERT_TRUE(c.bus.Remove(fmt::format("store:*,shard:\"{}\"", range)).ok());
  }
  Participant a2 = c.AddShard("80-c0", Engine::kMemory);
  Participant b2 = c.AddShard("c0-", Engine::kMemory);
  auto again = Migration::Open(c.Spec("trimmed-again", {c.shards["80-"]}, {a2, b2}));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_TRUE((*again)->Start().ok());
  ASSERT_TRUE((*again)->WaitForLag(0, 10s));
  auto recut = (*again)->Cutover();
  ASSERT_TRUE(recut.ok()) << recut.status().ToString();
  ASSERT_TRUE((*again)->Complete().ok());
  // Everything the source held in its range "80-" (the saves above went to its store directly,
  // whatever their ids' shard) is served from the new owners.
  std::vector<std::string> ids = {"first"};
  for (int i = 0; i < 20; ++i) ids.push_back(fmt::format("i{}", i));
  for (int i = 0; i < 10; ++i) ids.push_back(fmt::format("late{}", i));
  int checked = 0;
  for (const std::string& id : ids) {
    if (store::Ksid(id) < (uint64_t{1} << 63)) continue;  // shard "-80"'s range
    ++checked;
    auto loaded = c.Act(fmt::format(R"({{"store":"load","kind":"item","id":"{}"}})", id));
    EXPECT_TRUE(loaded.ok()) << id << ": " << loaded.status().ToString();
  }
  EXPECT_GT(checked, 5);
}

TEST(LiveMigration, ARollbackOverTheLagLimitIsRefusedNamingTheRollback) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kMemory);
  Participant b = c.AddShard("c0-", Engine::kMemory);
  Participant source = c.shards["80-"];
  source.store = std::make_shared<SlowApplyStore>(source.store, 300ms);
  MigrationSpec spec = c.Spec("refused-back", {source}, {a, b});
  spec.cutover.max_lag = 0;
  auto m = Migration::Open(std::move(spec));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE((*m)->Start().ok());
  ASSERT_TRUE((*m)->WaitForLag(0, 10s));
  ASSERT_TRUE((*m)->Cutover().ok());
  // A client write in the moved range, on its new owner: the source applies it 300 ms later.
  std::string id = "late";
  while (store::Ksid(id) < 0x8000000000000000ull) id += "+";
  ASSERT_TRUE(
      c.Act(fmt::format(R"({{"store":"save","kind":"item","ent":{{"id":"{}","v":"x"}}}})", id))
          .ok());
  auto back = (*m)->Rollback();
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), Code::kUnavailable);
  EXPECT_THAT(back.status().message(), ::testing::HasSubstr("rollback refused: replication lag"));
  ASSERT_TRUE((*m)->WaitForLag(0, 10s));
  EXPECT_TRUE((*m)->Rollback().ok());
}

TEST(LiveMigration, ACoordinatorCrashResumesFromTheJournal) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kRocksDb);
  Participant b = c.AddShard("c0-", Engine::kRocksDb);
  Workload load(c, 4);
  WaitOps(load, 1000);
  MigrationSpec spec = c.Spec("resume", {c.shards["80-"]}, {a, b});
  {
    auto m = Migration::Open(spec);
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE((*m)->Start().ok());
    WaitOps(load, 500);
  }  // the coordinator "dies" after copying, mid catch-up
  {
    auto m = Migration::Open(spec);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ((*m)->phase(), Phase::kCopied);
    ASSERT_TRUE((*m)->Start().ok());
    ASSERT_TRUE((*m)->WaitForLag(100, 10s));
    ASSERT_TRUE((*m)->Cutover().ok());
  }  // dies after cutover
  WaitOps(load, 500);
  {
    auto m = Migration::Open(spec);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ((*m)->phase(), Phase::kCutoverDone);
    ASSERT_TRUE((*m)->Complete().ok());
  }
  load.Stop();
  EXPECT_EQ(load.errors, 0) << (load.error_samples.empty() ? "" : load.error_samples[0]);
  load.Verify();
}

TEST(LiveMigration, ACrashInsideTheCutoverBeforeTheMapSwapReopensTheSource) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kMemory);
  Participant b = c.AddShard("c0-", Engine::kMemory);
  MigrationSpec spec = c.Spec("torn", {c.shards["80-"]}, {a, b});
  {
    auto m = Migration::Open(spec);
    ASSERT_TRUE((*m)->Start().ok());
  }
  // Simulate the coordinator dying with the gate closed and the journal saying "cutover".
  c.shards["80-"].gate->Close();
  std::string journal = spec.journal_path;
  {
    std::ifstream in(journal);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    auto pos = text.find("\"copied\"");
    ASSERT_NE(pos, std::string::npos);
    text.replace(pos, 8, "\"cutover\"");
    std::ofstream(journal) << text;
  }
  auto m = Migration::Open(spec);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)->phase(), Phase::kCopied);
  EXPECT_EQ(c.shards["80-"].gate->state(), shard::WriteGate::State::kOpen);
  EXPECT_TRUE(c.Act(R"({"store":"save","kind":"item","ent":{"id":"after"}})").ok());
}

uint64_t EntVersion(const Result<Message>& r) {
  if (!r.ok()) return 0;
  rapidjson::Document d;
  auto ent = r->GetObjectJson("ent").value_or("{}");
  d.Parse(ent.data(), ent.size());
  return d.HasMember("version") && d["version"].IsUint64() ? d["version"].GetUint64() : 0;
}

// A change-feed consumer of a shard (here the cache's FeedFollower, reading store:changes through
// the bus) follows the range through split, rollback and split again: it sees every acknowledged
// change of the range exactly once — none of the replicated copies, none missed — and keeps
// following the new owners after a restart.
TEST(LiveMigration, FeedConsumersMoveWithTheRangeAndSeeEveryChangeExactlyOnce) {
  Cluster cluster({"-80", "80-"});
  Participant low = cluster.shards["-80"];
  Participant a = cluster.AddShard("-40", Engine::kRocksDb);
  Participant b = cluster.AddShard("40-80", Engine::kSqlite);
  using Change = std::tuple<std::string, std::string, std::string, uint64_t>;  // kind id op version
  std::mutex mu;
  std::vector<Change> seen;
  cache::FeedFollowerOptions options;
  options.sources = {
      {"low", std::move(ParseMessage(R"({"store":"changes","shard":"-80"})")).value()}};
  options.state_path = cluster.dir_.path() + "/follower.state";
  options.poll_interval_ms = 5;
  options.batch = 50;
  options.on_change = [&](std::string_view kind, std::string_view id, std::string_view op,
                          uint64_t version) {
    std::lock_guard<std::mutex> lock(mu);
    seen.emplace_back(std::string(kind), std::string(id), std::string(op), version);
  };
  auto cache = cache::MakeEntityCache({});
  auto follower = std::make_unique<cache::FeedFollower>(cluster.bus, cache, options);
  ASSERT_TRUE(follower->PollOnce().ok());  // starts at the end of the feed
  follower->Start();

  // Writers record what was acknowledged: (kind, id, op, version) of every save and remove.
  std::set<Change> acknowledged;
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  // Every step runs under real traffic, however slow the machine (ASan, other jobs).
  auto wait_writes = [&](int more) {
    int target = writes + more;
    auto until = std::chrono::steady_clock::now() + 60s;
    while (writes < target && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);
  };
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::set<Change> mine;
      // A removed key is never saved again (versions restart after a remove), so every
      // (kind, id, op, version) names one change.
      std::vector<int> generation(100, 0);
      for (int i = 0; !stop; ++i) {
        int slot = static_cast<int>(rng() % 100);
        std::string id = fmt::format("w{}-{}-{}", t, slot, generation[slot]);
        bool remove = rng() % 5 == 0;
        if (remove) ++generation[slot];
        auto r = cluster.Act(
            remove ? fmt::format(R"({{"store":"remove","kind":"item","id":"{}"}})", id)
                   : fmt::format(R"({{"store":"save","kind":"item","ent":{{"id":"{}","v":"{}"}}}})",
                                 id, i));
        if (r.ok()) mine.emplace("item", id, remove ? "remove" : "save", EntVersion(r));
        ++writes;
        ASSERT_TRUE(r.ok() || r.status().code() == Code::kNotFound) << r.status().ToString();
      }
      std::lock_guard<std::mutex> lock(mu);
      acknowledged.insert(mine.begin(), mine.end());
    });
  }
  auto opened = Migration::Open(cluster.Spec("feed", {low}, {a, b}));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Migration& m = **opened;
  ASSERT_TRUE(m.Start().ok());
  ASSERT_TRUE(m.WaitForLag(10, 10s));
  wait_writes(150);
  ASSERT_TRUE(m.Cutover().ok());
  wait_writes(150);
  // A restart of the consumer between the moves: it must keep following the new owners.
  follower.reset();
  follower = std::make_unique<cache::FeedFollower>(cluster.bus, cache, options);
  follower->Start();
  ASSERT_TRUE(m.WaitForLag(10, 10s));
  ASSERT_TRUE(m.Rollback().ok());
  wait_writes(150);
  ASSERT_TRUE(m.WaitForLag(10, 10s));
  ASSERT_TRUE(m.Cutover().ok());
  wait_writes(150);
  stop = true;
  for (auto& w : writers) w.join();
  follower->Stop();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(follower->PollOnce().ok());

  EXPECT_THAT(follower->sources(), ::testing::UnorderedElementsAre("low>-40", "low>40-80"));
  EXPECT_EQ(follower->position("low"), 0u) << "the moved source is no longer followed";
  // The range's acknowledged changes: those of keys in -80.
  std::set<Change> expected;
  for (const auto& c : acknowledged) {
    if (store::Ksid(std::get<1>(c)) < 0x8000000000000000ull) expected.insert(c);
  }
  std::map<Change, int> counts;
  for (const auto& c : seen) ++counts[c];
  int duplicates = 0, missing = 0, unexpected = 0;
  for (const auto& [c, n] : counts) {
    if (n > 1) ++duplicates;
    if (!expected.count(c)) ++unexpected;
  }
  for (const auto& c : expected) {
    if (!counts.count(c)) ++missing;
  }
  EXPECT_GT(expected.size(), 200u);
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(missing, 0) << "of " << expected.size();
  EXPECT_EQ(unexpected, 0);
  ASSERT_TRUE(m.Complete().ok());
}

TEST(LiveMigration, TargetsMustOwnExactlyTheSourcesRanges) {
  Cluster c({"-80", "80-"});
  Participant a = c.AddShard("80-c0", Engine::kMemory);
  auto m = Migration::Open(c.Spec("bad", {c.shards["80-"]}, {a}));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(),
              ::testing::HasSubstr("targets do not own exactly the sources' ranges"));
}

}  // namespace
}  // namespace shardkit::migrate

namespace shardkit::migrate {
namespace {

// `cleanup` after `complete` deletes the source's copy of the moved range, and only then: refused
// before completion and while a feed consumer still reads the source, deleting nothing; every
// acknowledged write is still served by the targets afterwards.
TEST(LiveMigration, CleanupDeletesTheSourceCopyOnlyAfterCompleteAndWhenNothingReadsIt) {
  inproc::Cluster c({"-40", "40-80", "80-c0", "c0-"});
  Participant a = c.AddShard("40-60", inproc::Engine::kRocksDb);
  Participant b = c.AddShard("60-80", inproc::Engine::kRocksDb);
  inproc::Workload load(c, 4);
  inproc::WaitOps(load, 2000);
  auto m = Migration::Open(c.Spec("clean", {c.shards["40-80"]}, {a, b}));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE((*m)->Start().ok());
  auto source = c.shards["40-80"].store;
  auto count = [](store::EntityStore& s) {
    uint64_t n = 0;
    EXPECT_TRUE(s.ScanRange("", store::KsidRange{}, [&](const store::EntityRecord&) {
                   ++n;
                   return true;
                 }).ok());
    return n;
  };
  auto early = (*m)->Cleanup();
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.status().message(), "cleanup needs a completed migration (phase is copied)");
  ASSERT_TRUE((*m)->WaitForLag(100, std::chrono::seconds(10)));
  ASSERT_TRUE((*m)->Cutover().ok());
  inproc::WaitOps(load, 2000);
  ASSERT_TRUE((*m)->Complete().ok());
  const uint64_t held = count(*source);
  ASSERT_GT(held, 0u);

  ASSERT_TRUE(source->feed().RegisterConsumer("projection-x", 1).ok());
  auto read = (*m)->Cleanup();
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(),
            "source 40-80: cleanup refused: feed consumer 'projection-x' still reads it");
  EXPECT_EQ(count(*source), held) << "a refused cleanup deleted entities";
  ASSERT_TRUE(source->feed().RemoveConsumer("projection-x").ok());

  auto deleted = (*m)->Cleanup();
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, held);
  EXPECT_EQ(count(*source), 0u);
  auto again = (*m)->Cleanup();  // idempotent
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
  inproc::WaitOps(load, 1000);
  load.Stop();
  EXPECT_EQ(load.errors, 0) << (load.error_samples.empty() ? "" : load.error_samples[0]);
  load.Verify();
}

}  // namespace
}  // namespace shardkit::migrate
