// `shardkit bench split`: live splits under a steady write load, in one process: copy rate,
// catch-up lag, the write pause at cutover as clients saw it, errors and lost writes.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "shardkit/bench/bench.h"
#include "shardkit/message/bus.h"
#include "shardkit/migrate/migration.h"
#include "shardkit/shard/shard_router.h"
#include "shardkit/store/service.h"

namespace shardkit::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

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
    migrate::Participant p{name, std::move(opened).value(), std::make_shared<shard::WriteGate>()};
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

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
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

  fmt::print(stderr, "loading {} entities…\n", options.entities);
  std::vector<store::SaveRequest> batch;
  for (uint64_t i = 0; i < options.entities; ++i) {
    store::SaveRequest r;
    r.kind = "entry";
    r.id = fmt::format("{:016x}", i * 0x9E3779B97F4A7C15ull);
    r.ent = fmt::format(R"({{"text":"{:0>72}"}})", i);
    batch.push_back(std::move(r));
    if (batch.size() == 1000 || i + 1 == options.entities) {
      (void)whole.store->SaveBatch(batch);
      batch.clear();
    }
  }

  // The steady writer: `writes_per_s` unique-key saves, each timed as the client sees it.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0};
  std::mutex mu;
  std::vector<std::pair<SteadyClock::time_point, SteadyClock::time_point>> writes;  // start, end
  std::map<std::string, std::string> acknowledged;
  std::thread writer([&] {
    auto next = SteadyClock::now();
    const auto interval =
        std::chrono::nanoseconds(1'000'000'000 / std::max(1, options.writes_per_s));
    for (uint64_t i = 0; !stop; ++i) {
      next += interval;
      std::this_thread::sleep_until(next);
      std::string id = fmt::format("w{}", i % 50'000);
      std::string value = fmt::format("{}", i);
      Message m;
      m.SetString("store", "save")
          .SetString("kind", "entry")
          .SetObjectJson("ent", fmt::format(R"({{"id":"{}","v":"{}"}})", id, value));
      auto start = SteadyClock::now();
      auto r = node.bus.ActAndWait(std::move(m), std::chrono::seconds(10));
      auto end = SteadyClock::now();
      std::lock_guard<std::mutex> lock(mu);
      writes.emplace_back(start, end);
      if (r.ok()) {
        acknowledged[id] = value;
      } else {
        ++errors;
      }
    }
  });

  // Five splits, each halving a shard: - -> -80,80- -> …
  std::vector<std::pair<std::string, std::pair<std::string, std::string>>> plan = {
      {"-", {"-80", "80-"}},
      {"-80", {"-40", "40-80"}},
      {"80-", {"80-c0", "c0-"}},
      {"-40", {"-20", "20-40"}},
      {"40-80", {"40-60", "60-80"}}};
  plan.resize(std::min<size_t>(plan.size(), options.splits));
  uint64_t copied = 0;
  double copy_seconds = 0, lag_max_ms = 0;
  std::vector<double> pauses;
  int n = 0;
  for (const auto& [source, targets] : plan) {
    migrate::Participant a = node.AddShard(targets.first);
    migrate::Participant b = node.AddShard(targets.second);
    migrate::MigrationSpec spec;
    spec.id = fmt::format("split{}", n++);
    spec.sources = {node.shards[source]};
    spec.targets = {a, b};
    spec.map = node.map;
    spec.journal_path = node.root + "/" + spec.id + ".journal";
    auto m = migrate::Migration::Open(spec);
    if (!m.ok()) throw std::runtime_error(m.status().ToString());
    auto copy_start = SteadyClock::now();
    if (Status s = (*m)->Start(); !s.ok()) throw std::runtime_error(s.ToString());
    copy_seconds += std::chrono::duration<double>(SteadyClock::now() - copy_start).count();
    copied += (*m)->progress().rows_copied;
    // Catch-up lag: sample until within 100 records, as time behind.
    auto catch_start = SteadyClock::now();
    (*m)->WaitForLag(100, std::chrono::seconds(30));
    lag_max_ms = std::max(
        lag_max_ms,
        std::chrono::duration<double, std::milli>(SteadyClock::now() - catch_start).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto cut_start = SteadyClock::now();
    auto cut = (*m)->Cutover();
    auto cut_end = SteadyClock::now();
    if (!cut.ok()) throw std::runtime_error("cutover: " + cut.status().ToString());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let held writes land
    // The pause as clients saw it: the longest write overlapping the cutover.
    double pause = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [s, e] : writes) {
        if (s <= cut_end && e >= cut_start)
          pause = std::max(pause, std::chrono::duration<double, std::milli>(e - s).count());
      }
    }
    pauses.push_back(pause);
    if (Status s = (*m)->Complete(); !s.ok()) throw std::runtime_error(s.ToString());
  }
  stop = true;
  writer.join();

  uint64_t lost = 0;
  for (const auto& [id, value] : acknowledged) {
    Message m;
    m.SetString("store", "load").SetString("kind", "entry").SetString("id", id);
    auto r = node.bus.ActAndWait(std::move(m), std::chrono::seconds(10));
    rapidjson::Document d;
    if (r.ok()) {
      auto ent = r->GetObjectJson("ent").value_or("{}");
      d.Parse(ent.data(), ent.size());
    }
    if (!r.ok() || !d.IsObject() || !d.HasMember("v") || value != d["v"].GetString()) ++lost;
  }
  std::filesystem::remove_all(node.root);
  return {{"copy_per_s", copy_seconds > 0 ? copied / copy_seconds : 0},
          {"catchup_lag_max_ms", lag_max_ms},
          {"pause_median_ms", Percentile(pauses, 0.5)},
          {"pause_max_ms", pauses.empty() ? 0 : *std::max_element(pauses.begin(), pauses.end())},
          {"client_errors", static_cast<double>(errors.load())},
          {"lost_writes", static_cast<double>(lost)},
          {"splits", static_cast<double>(pauses.size())},
          {"entities", static_cast<double>(options.entities)}};
}

}  // namespace shardkit::bench
