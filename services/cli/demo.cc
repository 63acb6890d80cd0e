// `shardkit demo`: the seed's argument made visible. A node is built from TOML and changed only
// by config reloads (additivity) while a load generator runs: a sharded entry-store takes posts,
// an entry-cache is added with the seed's transition sequence, and the busiest shard is split live.
// Each step reports requests, errors and latency as the clients saw them.
#include "demo.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include <unistd.h>

#include "shardkit/message/codec.h"
#include "shardkit/migrate/migration.h"
#include "shardkit/services/config.h"
#include "shardkit/services/data_services.h"
#include "shardkit/services/node.h"

namespace shardkit::cli {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string NodeConfig(const std::string& dir, const std::vector<std::string>& shards,
                       bool both_patterns, bool cache) {
  std::string toml = R"(
[node]
name = "entry-store"
[[listener]]
url = "inproc://demo-entries"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
)";
  for (const auto& shard : shards) {
    toml += fmt::format(R"(
[[service]]
name = "entry-store{0}"
type = "store"
backend = "rocksdb"
path = "{1}/store{0}"
shard = "{0}"
)",
                        shard, dir);
  }
  std::string router_patterns = cache ? R"("store:*,kind:entry,cache:true")"
                                : both_patterns
                                    ? R"("store:*,kind:entry", "store:*,kind:entry,cache:true")"
                                    : R"("store:*,kind:entry")";
  toml += fmt::format(R"(
[[service]]
name = "router"
type = "shard-router"
patterns = [{}]
)",
                      router_patterns);
  if (cache) {
    toml += R"(
[[service]]
name = "entry-cache"
type = "cache"
patterns = ["store:*,kind:entry", "sys:cache,cmd:stats"]
)";
  }
  return toml;
}

struct StepFigures {
  std::string name;
  uint64_t requests = 0;
  uint64_t errors = 0;
  std::vector<double> latencies_ms;
};

// Clients sending loads (80%) and saves (20%) of the posted entries throughout.
class LoadGenerator {
 public:
  LoadGenerator(Bus& bus, int entries) : bus_(bus), entries_(entries) {
    for (int t = 0; t < 2; ++t) threads_.emplace_back([this, t] { Run(t); });
  }
  ~LoadGenerator() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  void StartStep(std::string name) {
    std::lock_guard<std::mutex> lock(mu_);
    StepFigures step;
    step.name = std::move(name);
    steps_.push_back(std::move(step));
  }
  std::vector<StepFigures> steps() {
    std::lock_guard<std::mutex> lock(mu_);
    return steps_;
  }
  std::string last_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_;
  }

 private:
  void Run(int t) {
    std::mt19937 rng(t);
    while (!stop_) {
      // Skewed: a tenth of the entries get most of the reads, as posts do.
      int id = rng() % 10 < 8 ? rng() % std::max(1, entries_ / 10) : rng() % entries_;
      Message m;
      m.SetString("store", rng() % 5 == 0 ? "save" : "load").SetString("kind", "entry");
      if (*m.GetString("store") == "save") {
        m.SetObjectJson("ent",
                        fmt::format(R"({{"id":"e{}","text":"edited by client {}"}})", id, t));
      } else {
        m.SetString("id", fmt::format("e{}", id));
      }
      auto start = SteadyClock::now();
      auto r = bus_.ActAndWait(std::move(m), std::chrono::seconds(10));
      double ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
      std::lock_guard<std::mutex> lock(mu_);
      if (steps_.empty()) continue;
      StepFigures& step = steps_.back();
      ++step.requests;
      step.latencies_ms.push_back(ms);
      if (!r.ok()) {
        ++step.errors;
        last_error_ = r.status().ToString();
      }
    }
  }

  Bus& bus_;
  const int entries_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<StepFigures> steps_;
  std::string last_error_;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1)))];
}

Status Reload(services::Node& node, const std::string& toml) {
  auto config = services::ParseNodeConfig(toml, "demo.toml");
  if (!config.ok()) return config.status();
  return node.Reload(std::move(config).value());
}

double HitRatio(services::Node& node) {
  auto stats =
      node.bus().ActAndWait(std::move(ParseMessage(R"({"sys":"cache","cmd":"stats"})")).value());
  return stats.ok() ? stats->GetDouble("hit_ratio").value_or(0) : 0;
}

}  // namespace

int RunDemo(const DemoOptions& options) {
  services::RegisterDataServices();
  const int entries = options.quick ? 2'000 : 20'000;
  const auto step_time = std::chrono::milliseconds(options.quick ? 800 : 3'000);
  std::string dir =
      (std::filesystem::temp_directory_path() / fmt::format("shardkit-demo-{}", getpid())).string();
  std::filesystem::create_directories(dir);
  auto say = [](std::string_view title, std::string_view why) {
    fmt::print("\n== {}\n   {}\n", title, why);
  };

  say("Iteration 0: an entry-store, sharded over two RocksDB shards (-80, 80-)",
      "One node built from TOML: a shard map, one store per shard behind a guard, a shard router.");
  auto config =
      services::ParseNodeConfig(NodeConfig(dir, {"-80", "80-"}, false, false), "demo.toml");
  if (!config.ok()) {
    fmt::print(stderr, "shardkit: {}\n", config.status().ToString());
    return 2;
  }
  auto started = services::Node::Start(std::move(config).value());
  if (!started.ok()) {
    fmt::print(stderr, "shardkit: {}\n", started.status().ToString());
    return 2;
  }
  std::unique_ptr<services::Node> node = std::move(started).value();
  Bus& bus = node->bus();
  for (int i = 0; i < entries; i += 500) {
    std::string ents = "[";
    for (int j = i; j < std::min(entries, i + 500); ++j) {
      ents += fmt::format(R"({}{{"id":"e{}","user":"u{}","text":"post number {}"}})",
                          j == i ? "" : ",", j, j % 50, j);
    }
    Message m;
    m.SetString("store", "save").SetString("kind", "entry").SetArrayJson("ents", ents + "]");
    auto r = bus.ActAndWait(std::move(m));
    if (!r.ok()) {
      fmt::print(stderr, "shardkit: posting entries: {}\n", r.status().ToString());
      return 1;
    }
  }
  auto latest = bus.ActAndWait(
      std::move(
          ParseMessage(
              R"({"store":"list","kind":"entry","q":{"user":"u7","limit$":3,"fields$":["text"]}})"))
          .value());
  fmt::print(
      "   posted {} entries; store:list,kind:entry with q:{{user:u7, limit$:3}} answers\n   {}\n",
      entries,
      latest.ok() ? std::string(*latest->GetArrayJson("items")) : latest.status().ToString());

  LoadGenerator load(bus, entries);
  load.StartStep("iteration 0: store only");
  std::this_thread::sleep_for(step_time);

  say("Iteration 2: add entry-cache by configuration, with the seed's transition sequence",
      "Reload 1: the router also answers store:*,kind:entry,cache:true. Reload 2: the cache takes\n"
      "   store:*,kind:entry and forwards misses as cache:true. Nothing restarts; clients keep "
      "sending.");
  load.StartStep("iteration 2: transition");
  if (Status s = Reload(*node, NodeConfig(dir, {"-80", "80-"}, true, false)); !s.ok()) {
    fmt::print(stderr, "shardkit: reload: {}\n", s.ToString());
    return 1;
  }
  std::this_thread::sleep_for(step_time / 2);
  if (Status s = Reload(*node, NodeConfig(dir, {"-80", "80-"}, false, true)); !s.ok()) {
    fmt::print(stderr, "shardkit: reload: {}\n", s.ToString());
    return 1;
  }
  load.StartStep("iteration 2: with cache");
  for (int i = 1; i <= 4; ++i) {
    std::this_thread::sleep_for(step_time / 4);
    fmt::print("   cache hit ratio after {:4.1f} s: {:5.1f}%\n", i * step_time.count() / 4000.0,
               100 * HitRatio(*node));
  }

  say("Iteration 4: split shard -80 into -40 and 40-80, live, under the same load",
      "Targets are added by reload; the migration copies, catches up from the change feed, then "
      "cuts\n"
      "   over: writes to -80 wait at its gate, the map moves to a new epoch, and they go on to "
      "the targets.");
  if (Status s = Reload(*node, NodeConfig(dir, {"-80", "80-", "-40", "40-80"}, false, true));
      !s.ok()) {
    fmt::print(stderr, "shardkit: reload: {}\n", s.ToString());
    return 1;
  }
  auto source = services::FindServedShard("-80");
  auto left = services::FindServedShard("-40");
  auto right = services::FindServedShard("40-80");
  migrate::MigrationSpec spec;
  spec.id = "demo-split";
  spec.sources = {{"-80", source.store, source.gate}};
  spec.targets = {{"-40", left.store, left.gate}, {"40-80", right.store, right.gate}};
  spec.map = services::FindShardMap("main");
  spec.journal_path = dir + "/demo-split.journal";
  load.StartStep("iteration 4: live split");
  auto migration = migrate::Migration::Open(spec);
  if (!migration.ok()) {
    fmt::print(stderr, "shardkit: migration: {}\n", migration.status().ToString());
    return 1;
  }
  uint64_t rows = 0;
  (void)source.store->ScanRange("", {}, [&](const store::EntityRecord&) { return ++rows > 0; });
  std::atomic<bool> copying{true};
  Status copy_status;
  std::thread copier([&] {
    copy_status = (*migration)->Start();
    copying = false;
  });
  // The bar redraws in place on a terminal; piped output gets only the final line.
  const bool tty = isatty(fileno(stdout));
  while (copying) {
    uint64_t done = std::min(rows, (*migration)->progress().rows_copied);
    int width = 40, filled = rows ? static_cast<int>(width * done / rows) : width;
    if (tty) {
      fmt::print("\r   copy [{:<{}}] {}/{} rows", std::string(filled, '#'), width, done, rows);
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  copier.join();
  fmt::print("{}   copy [{:#<40}] {}/{} rows at {:.0f} rows/s\n", tty ? "\r" : "", "", rows, rows,
             (*migration)->progress().copy_rows_per_s);
  if (!copy_status.ok()) {
    fmt::print(stderr, "shardkit: copy: {}\n", copy_status.ToString());
    return 1;
  }
  (*migration)->WaitForLag(50, std::chrono::seconds(10));
  auto verified = (*migration)->Verify();
  if (verified.ok()) {
    fmt::print(
        "   verify: {} compared, {} missing, {} extra, {} different ({} written meanwhile)\n",
        verified->compared, verified->missing, verified->extra, verified->different,
        verified->in_flux);
  }
  auto cut = (*migration)->Cutover();
  if (!cut.ok()) {
    fmt::print(stderr, "shardkit: cutover: {}\n", cut.status().ToString());
    return 1;
  }
  fmt::print("   cutover: map epoch {} -> {}, write gate closed for {:.1f} ms\n", cut->epoch - 1,
             cut->epoch, cut->pause_ms);
  std::this_thread::sleep_for(step_time / 2);
  Status completed = (*migration)->Complete();
  std::this_thread::sleep_for(step_time / 2);
  load.Stop();

  auto steps = load.steps();
  double hit_ratio = HitRatio(*node);
  fmt::print("\n== Summary (as the clients saw it)\n");
  fmt::print("   {:<28} {:>9} {:>7} {:>9} {:>9}\n", "step", "requests", "errors", "p50 ms",
             "p99 ms");
  uint64_t errors = 0;
  double split_p99 = 0, split_max = 0;
  for (const auto& s : steps) {
    errors += s.errors;
    fmt::print("   {:<28} {:>9} {:>7} {:>9.3f} {:>9.3f}\n", s.name, s.requests, s.errors,
               Percentile(s.latencies_ms, 0.5), Percentile(s.latencies_ms, 0.99));
    if (s.name.find("split") != std::string::npos) {
      split_p99 = Percentile(s.latencies_ms, 0.99);
      split_max = s.latencies_ms.empty()
                      ? 0
                      : *std::max_element(s.latencies_ms.begin(), s.latencies_ms.end());
    }
  }
  fmt::print(
      "   cache hit ratio {:.1f}%, split write pause {:.1f} ms (slowest request during the split "
      "{:.1f} ms, p99 {:.2f} ms)\n",
      100 * hit_ratio, cut->pause_ms, split_max, split_p99);
  fmt::print("   split {}; shard map now: ",
             completed.ok() ? "completed" : "NOT completed: " + completed.ToString());
  for (const auto& s : services::FindShardMap("main")->Current()->shards())
    fmt::print("{} ", s.name);
  fmt::print("\n   errors: {}{}\n", errors, errors ? " (last: " + load.last_error() + ")" : "");
  fmt::print(
      "\nNot in this demo yet: the seed's iterations 1 and 3 (index, follow, timeline, fanout "
      "services)\n"
      "and separate node processes; see the README for serving nodes with `shardkit serve`.\n");
  node->Stop(std::chrono::milliseconds(2000));
  node.reset();
  std::filesystem::remove_all(dir);
  return errors == 0 && completed.ok() && hit_ratio > 0 ? 0 : 1;
}

}  // namespace shardkit::cli
