// `shardkit bench split --remote`: ranges moved live from one `shardkit serve` process to another
// under a steady write load. The source node holds the authoritative shard map (four ranges), a
// RocksDB store per range, the shard router the clients write through and the migrator; the target
// node follows its map and serves an empty store per range. The bench process loads the source's
// store files before the node starts, then drives each move with the migrator's messages (as
// `shardkit migrate move` sends them) while its writer saves over TCP through the source's router.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "serve_node.h"
#include "shardkit/bench/bench.h"
#include "shardkit/store/entity_store.h"
#include "shardkit/store/keyspace.h"
#include "split_harness.h"

namespace shardkit::bench {
namespace {

using split::SteadyClock;

// The source's ranges, each moved in turn to a store of the same range on the target node. The
// index of a ksid's range is its top two bits.
const std::vector<std::string> kRanges = {"-40", "40-80", "80-c0", "c0-"};

std::string DirOf(const std::string& range) { return range == "-40" ? "00-40" : range; }
std::string TargetOf(const std::string& range) { return range + "@b"; }

std::string StoreService(const std::string& shard, const std::string& path) {
  return ServiceConfig("store-" + shard, "store",
                       fmt::format("path = \"{}\"\nshard = \"{}\"", path, shard));
}

// The source node; with `target_url`, also the routes of the target's shards to it.
std::string SourceConfig(const std::string& data, const std::string& target_url) {
  std::string toml = NodeConfigHead("bench-source");
  toml += ServiceConfig("map", "shard-map",
                        fmt::format("ranges = [\"-40\", \"40-80\", \"80-c0\", \"c0-\"]\n"
                                    "path = \"{}/map.json\"",
                                    data));
  toml += ServiceConfig("router", "shard-router", "node_id = 1");
  toml += ServiceConfig("migrator", "migrator", fmt::format("dir = \"{}/migrations\"", data));
  for (const auto& range : kRanges) toml += StoreService(range, data + "/" + DirOf(range));
  if (target_url.empty()) return toml;
  for (const auto& range : kRanges) {
    toml += RouteConfig(fmt::format(R"(store:*,kind:*,shard:"{}")", TargetOf(range)), target_url,
                        "timeout_ms = 10000");
  }
  return toml;
}

std::string TargetConfig(const std::string& data, const std::string& source_url) {
  std::string toml = NodeConfigHead("bench-target");
  toml += ServiceConfig("map", "shard-map", fmt::format("from = \"{}\"", source_url));
  for (const auto& range : kRanges)
    toml += StoreService(TargetOf(range), data + "/" + DirOf(range) + "_b");
  return toml;
}

void Save(store::EntityStore& store, std::vector<store::SaveRequest>& batch) {
  for (const auto& saved : store.SaveBatch(batch))
    if (!saved.ok()) throw std::runtime_error("load: " + saved.status().ToString());
  batch.clear();
}

// The same entities as the local bench (split_bench.cc), written straight into the source's store
// files, each into the store of its range, in batches of 1,000.
void LoadSourceFiles(const std::string& data, uint64_t entities) {
  fmt::print(stderr, "loading {} entities into the source's store files…\n", entities);
  std::vector<std::unique_ptr<store::EntityStore>> stores;
  for (const auto& range : kRanges) {
    store::StoreOptions options;
    options.path = data + "/" + DirOf(range);
    options.purge_interval_ms = 0;
    auto opened = store::OpenRocksDbStore(options);
    if (!opened.ok()) throw std::runtime_error(opened.status().ToString());
    stores.push_back(std::move(opened).value());
  }
  std::vector<std::vector<store::SaveRequest>> batches(kRanges.size());
  for (uint64_t i = 0; i < entities; ++i) {
    store::SaveRequest r;
    r.kind = "entry";
    r.id = fmt::format("{:016x}", i * 0x9E3779B97F4A7C15ull);
    r.ent = fmt::format(R"({{"text":"{:0>72}"}})", i);
    const size_t range = store::Ksid(r.id) >> 62;
    batches[range].push_back(std::move(r));
    if (batches[range].size() == 1000) Save(*stores[range], batches[range]);
  }
  for (size_t s = 0; s < stores.size(); ++s) Save(*stores[s], batches[s]);
}  // the stores close here: the source node opens the files next

Message Migrate(const std::string& op, const std::string& id) {
  Message m;
  m.SetString("migrate", op).SetString("id", id);
  return m;
}

Message Checked(Handler& admin, Message m, const std::string& what) {
  auto r = services::CallAndWait(admin, std::move(m));
  if (!r.ok()) throw std::runtime_error(fmt::format("{}: {}", what, r.status().ToString()));
  return std::move(r).value();
}

// Polls the migration's status until `done` says so (every 10 ms, at most 120 s).
Message WaitStatus(Handler& admin, const std::string& id,
                   const std::function<bool(const Message&)>& done) {
  const auto until = SteadyClock::now() + std::chrono::seconds(120);
  while (SteadyClock::now() < until) {
    Message status = Checked(admin, Migrate("status", id), "status " + id);
    if (done(status)) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("bench split --remote: " + id + " timed out");
}

struct MoveTotals {
  uint64_t copied = 0;
  double copy_seconds = 0;
  double lag_max_ms = 0;
  std::vector<double> pauses;
  std::vector<double> gate_closed_ms;     // the migrator's own pause_ms: gate closed to retired
  std::vector<double> copy_latencies_ms;  // the writer's writes started during the copies
};

// One range moved to the target node, as `shardkit migrate move … --cutover --complete` does it:
// start (the copy), then, caught up, cutover and complete.
void Move(Handler& admin, split::SteadyWriter& writer, const std::string& range,
          const std::string& target_url, MoveTotals& totals) {
  const std::string id = "move" + DirOf(range);
  Message start = Migrate("start", id);
  start.SetObjectJson("sources", fmt::format(R"(["{}"])", range))
      .SetObjectJson("targets", fmt::format(R"(["{}"])", TargetOf(range)))
      .SetObjectJson("nodes", fmt::format(R"({{"{}":"{}"}})", TargetOf(range), target_url));
  const auto copy_start = SteadyClock::now();
  Checked(admin, std::move(start), "start " + id);
  Message copied = WaitStatus(admin, id, [](const Message& s) {
    return s.GetBool("copying") == std::optional<bool>(false);
  });
  const auto copy_end = SteadyClock::now();
  if (copied.GetString("phase") != std::optional<std::string_view>("copied"))
    throw std::runtime_error(id + ": the copy ended in phase " +
                             std::string(copied.GetString("phase").value_or("?")));
  totals.copy_seconds += std::chrono::duration<double>(copy_end - copy_start).count();
  totals.copied += copied.GetUint("rows_copied").value_or(0);
  auto during = writer.LatenciesStartedIn(copy_start, copy_end);
  totals.copy_latencies_ms.insert(totals.copy_latencies_ms.end(), during.begin(), during.end());
  // Catch-up lag: the time until the target is within 100 records of the source.
  WaitStatus(admin, id, [](const Message& s) { return s.GetUint("lag").value_or(~0ull) <= 100; });
  totals.lag_max_ms =
      std::max(totals.lag_max_ms,
               std::chrono::duration<double, std::milli>(SteadyClock::now() - copy_end).count());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto cut_start = SteadyClock::now();
  Message cut = Checked(admin, Migrate("cutover", id), "cutover " + id);
  const auto cut_end = SteadyClock::now();
  totals.gate_closed_ms.push_back(cut.GetDouble("pause_ms").value_or(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let held writes land
  // The pause as clients saw it: the longest write overlapping the cutover.
  totals.pauses.push_back(writer.LongestOverlapping(cut_start, cut_end));
  Checked(admin, Migrate("complete", id), "complete " + id);
}

}  // namespace

Figures RunRemoteSplitBench(const SplitBenchOptions& options) {
  // The local split first, same entities and writes, for the ratio.
  const Figures local = RunSplitBench(options);
  const std::string root = (std::filesystem::temp_directory_path() /
                            fmt::format("shardkit-bench-split-remote-{}", getpid()))
                               .string();
  std::filesystem::remove_all(root);
  LoadSourceFiles(root + "/source-data", options.entities);

  MoveTotals totals;
  uint64_t errors = 0, lost = 0;
  {
    ServeNode source(root + "/source", SourceConfig(root + "/source-data", ""));
    ServeNode target(root + "/target", TargetConfig(root + "/target-data", source.url()));
    services::IoRuntime runtime(2);
    auto admin = ClientOf(runtime, source.url(), 1, std::chrono::seconds(60));
    // The source learns where the target's shards are: its config gains their routes, reloaded.
    std::ofstream(source.config_path()) << SourceConfig(root + "/source-data", target.url());
    Message reload;
    reload.SetString("sys", "config").SetString("cmd", "reload");
    Checked(*admin, std::move(reload), "reload the source's config");

    auto client = ClientOf(runtime, source.url(), 1, std::chrono::seconds(10));
    split::Call call = [&client](Message m) {
      return services::CallAndWait(*client, std::move(m));
    };
    split::SteadyWriter writer(call, options.writes_per_s);
    for (const auto& range : kRanges) Move(*admin, writer, range, target.url(), totals);
    writer.Stop();
    errors = writer.errors();
    if (errors > 0) fmt::print(stderr, "first client error: {}\n", writer.first_error());
    lost = split::CountLost(call, writer.acknowledged());
  }
  std::filesystem::remove_all(root);

  auto local_figure = [&local](const std::string& name) {
    for (const auto& [key, value] : local)
      if (key == name) return value;
    return 0.0;
  };
  const double copy_per_s = totals.copy_seconds > 0 ? totals.copied / totals.copy_seconds : 0;
  const double local_copy = local_figure("copy_per_s");
  const auto& pauses = totals.pauses;
  Figures out = {
      {"copy_per_s", copy_per_s},
      {"catchup_lag_max_ms", totals.lag_max_ms},
      {"pause_median_ms", split::Percentile(pauses, 0.5)},
      {"pause_max_ms", pauses.empty() ? 0 : *std::max_element(pauses.begin(), pauses.end())},
      {"client_errors", static_cast<double>(errors)},
      {"lost_writes", static_cast<double>(lost)},
      {"cutover_gate_median_ms", split::Percentile(totals.gate_closed_ms, 0.5)},
      {"cutover_gate_max_ms",
       totals.gate_closed_ms.empty()
           ? 0
           : *std::max_element(totals.gate_closed_ms.begin(), totals.gate_closed_ms.end())},
      {"client_p99_ms_during_copy", split::Percentile(totals.copy_latencies_ms, 0.99)},
      {"rows_copied", static_cast<double>(totals.copied)},
      {"moves", static_cast<double>(pauses.size())},
      {"entities", static_cast<double>(options.entities)},
      {"remote_vs_local_copy_ratio", local_copy > 0 ? copy_per_s / local_copy : 0}};
  for (const auto& [key, value] : local) out.emplace_back("local_" + key, value);
  return out;
}

}  // namespace shardkit::bench
