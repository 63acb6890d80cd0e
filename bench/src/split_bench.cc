// `shardkit bench split`: live splits under a steady write load, in one process: copy rate,
// catch-up lag, the write pause at cutover as clients saw it, errors and lost writes.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shardkit/bench/bench.h"
#include "shardkit/message/bus.h"
#include "shardkit/migrate/migration.h"
#include "shardkit/shard/shard_router.h"
#include "shardkit/store/service.h"
#include "split_harness.h"

namespace shardkit::bench {
namespace {

using split::Percentile;
using split::SteadyClock;
using split::SteadyWriter;

struct Node {
  Bus bus;
  std::shared_ptr<shard::ShardMapHolder> map;
  std::map<std::string, migrate::Participant> shards;
  std::string root;

  migrate::Participant AddShard(const std::string& name) {
    store::StoreOptions options;
    options.path = root + "/" + name;
    options.purge_interval_ms = 0;
    auto opened = store::OpenRocksDbStore(options);
    if (!opened.ok()) throw std::runtime_error(opened.status().ToString());
    migrate::Participant p{
        name, std::move(opened).value(), std::make_shared<shard::WriteGate>(), {}, {}};
    auto refresh = [m = map]() -> Result<shard::ShardMap> { return *m->Current(); };
    // The store's route, then its guard over it (reaching the store as Prior).
    std::string pattern = fmt::format("store:*,shard:\"{}\"", name);
    Status s = bus.Add(pattern, store::MakeStoreService(p.store));
    if (s.ok()) s = bus.Override(pattern, shard::MakeShardGuard({name, map, refresh, p.gate}));
    if (!s.ok()) throw std::runtime_error(s.ToString());
    shards[name] = p;
    return p;
  }
};

void Load(migrate::Participant& whole, uint64_t entities) {
  fmt::print(stderr, "loading {} entities…\n", entities);
  std::vector<store::SaveRequest> batch;
  for (uint64_t i = 0; i < entities; ++i) {
    store::SaveRequest r;
    r.kind = "entry";
    r.id = fmt::format("{:016x}", i * 0x9E3779B97F4A7C15ull);
    r.ent = fmt::format(R"({{"text":"{:0>72}"}})", i);
    batch.push_back(std::move(r));
    if (batch.size() == 1000 || i + 1 == entities) {
      (void)whole.store->SaveBatch(batch);
      batch.clear();
    }
  }
}

struct SplitTotals {
  uint64_t copied = 0;
  double copy_seconds = 0;
  double lag_max_ms = 0;
  std::vector<double> pauses;
};

// One live split of `source` into `targets` while the writer runs: copy, catch up, cut over.
void Split(Node& node, SteadyWriter& writer, const std::string& id, const std::string& source,
           const std::pair<std::string, std::string>& targets, SplitTotals& totals) {
  migrate::Participant a = node.AddShard(targets.first);
  migrate::Participant b = node.AddShard(targets.second);
  migrate::MigrationSpec spec;
  spec.id = id;
  spec.sources = {node.shards[source]};
  spec.targets = {a, b};
  spec.map = node.map;
  spec.journal_path = node.root + "/" + spec.id + ".journal";
  auto m = migrate::Migration::Open(spec);
  if (!m.ok()) throw std::runtime_error(m.status().ToString());
  auto copy_start = SteadyClock::now();
  if (Status s = (*m)->Start(); !s.ok()) throw std::runtime_error(s.ToString());
  totals.copy_seconds += std::chrono::duration<double>(SteadyClock::now() - copy_start).count();
  totals.copied += (*m)->progress().rows_copied;
  // Catch-up lag: the time until the targets are within 100 records of the source.
  auto catch_start = SteadyClock::now();
  (*m)->WaitForLag(100, std::chrono::seconds(30));
  totals.lag_max_ms =
      std::max(totals.lag_max_ms,
               std::chrono::duration<double, std::milli>(SteadyClock::now() - catch_start).count());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto cut_start = SteadyClock::now();
  auto cut = (*m)->Cutover();
  auto cut_end = SteadyClock::now();
  if (!cut.ok()) throw std::runtime_error("cutover: " + cut.status().ToString());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let held writes land
  // The pause as clients saw it: the longest write overlapping the cutover.
  totals.pauses.push_back(writer.LongestOverlapping(cut_start, cut_end));
  if (Status s = (*m)->Complete(); !s.ok()) throw std::runtime_error(s.ToString());
}

}  // namespace

Figures RunSplitBench(const SplitBenchOptions& options) {
  Node node;
  node.root =
      (std::filesystem::temp_directory_path() / fmt::format("shardkit-bench-split-{}", getpid()))
          .string();
  std::filesystem::remove_all(node.root);
  std::filesystem::create_directories(node.root);
  node.map = std::make_shared<shard::ShardMapHolder>(*shard::ShardMap::Make(1, {"-"}));
  auto router_map = std::make_shared<shard::ShardMapHolder>(*node.map->Current());
  auto refresh = [m = node.map]() -> Result<shard::ShardMap> { return *m->Current(); };
  (void)node.bus.Add("store:*", shard::MakeShardRouter({router_map, refresh,
                                                        std::make_shared<store::IdGenerator>(1)}));
  migrate::Participant whole = node.AddShard("-");
  Load(whole, options.entities);

  auto call = [&bus = node.bus](Message m) {
    return bus.ActAndWait(std::move(m), std::chrono::seconds(10));
  };
  SteadyWriter writer(call, options.writes_per_s);
  // Five splits, each halving a shard: - -> -80,80- -> …
  std::vector<std::pair<std::string, std::pair<std::string, std::string>>> plan = {
      {"-", {"-80", "80-"}},
      {"-80", {"-40", "40-80"}},
      {"80-", {"80-c0", "c0-"}},
      {"-40", {"-20", "20-40"}},
      {"40-80", {"40-60", "60-80"}}};
  plan.resize(std::min<size_t>(plan.size(), options.splits));
  SplitTotals totals;
  int n = 0;
  for (const auto& [source, targets] : plan)
    Split(node, writer, fmt::format("split{}", n++), source, targets, totals);
  writer.Stop();

  const uint64_t lost = split::CountLost(call, writer.acknowledged());
  std::filesystem::remove_all(node.root);
  const std::vector<double>& pauses = totals.pauses;
  return {{"copy_per_s", totals.copy_seconds > 0 ? totals.copied / totals.copy_seconds : 0},
          {"catchup_lag_max_ms", totals.lag_max_ms},
          {"pause_median_ms", Percentile(pauses, 0.5)},
          {"pause_max_ms", pauses.empty() ? 0 : *std::max_element(pauses.begin(), pauses.end())},
          {"client_errors", static_cast<double>(writer.errors())},
          {"lost_writes", static_cast<double>(lost)},
          {"splits", static_cast<double>(pauses.size())},
          {"entities", static_cast<double>(options.entities)}};
}

}  // namespace shardkit::bench
