#include "bench_commands.h"
#include "commands.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "shardkit/bench/bench.h"

namespace shardkit::cli {
namespace {

using shardkit::bench::Figures;

void PrintFigures(const Figures& figures, bool json) {
  if (json) {
    std::cout << shardkit::bench::FiguresToJson(figures) << std::endl;
  } else {
    std::cout << shardkit::bench::FiguresToTable(figures);
  }
}

// The benchmarks driven by Google Benchmark options; add one line here for a new one.
struct BenchCommand {
  const char* name;
  const char* help;
  shardkit::bench::Figures (*run)(const shardkit::bench::Options&);
};
constexpr BenchCommand kBenchCommands[] = {
    {"router", "Pattern matching and in-process act", shardkit::bench::RunRouterBench},
    {"codec", "JSON parse, serialize and parse-route-reply", shardkit::bench::RunCodecBench},
};

// Each benchmark's options, kept for the life of the process (CLI11 writes into them on parse).
struct BenchState {
  bool json = false;
  shardkit::bench::Options bench_options;
  shardkit::bench::NetOptions net_options;
  shardkit::bench::StoreBenchOptions store_options;
  shardkit::bench::SplitBenchOptions split_options;
  bool split_remote = false;
  shardkit::bench::CacheBenchOptions cache_options;
  shardkit::bench::CqrsBenchOptions cqrs_options;
  double seneca_seconds = 3;
  int seneca_rounds = 3;
  std::string seneca_script = SHARDKIT_SENECA_BENCH_SCRIPT;
  BenchState() { bench_options.patrun_script = SHARDKIT_PATRUN_BENCH_SCRIPT; }
};

BenchState& State() {
  static BenchState state;
  return state;
}

void AddEngineBenchmarks(CLI::App* bench, BenchState& st) {
  auto& bench_options = st.bench_options;
  bool& json = st.json;
  for (const BenchCommand& command : kBenchCommands) {
    auto* sub = bench->add_subcommand(command.name, command.help);
    sub->add_flag("--json", json, "Print one flat JSON object");
    sub->add_option("--repetitions", bench_options.repetitions,
                    "Runs per figure (the median is reported)")
        ->check(Positive())
        ->capture_default_str();
    sub->add_option("--min-time", bench_options.min_time_s, "Seconds per run")
        ->check(Positive())
        ->capture_default_str();
    if (std::string_view(command.name) == "router") {
      sub->add_option("--patrun-script", bench_options.patrun_script,
                      "Node.js script timing patrun on the same patterns (needs node and "
                      "tests/seneca's npm packages; empty: no patrun figures)")
          ->capture_default_str();
    }
    sub->callback([&, run = command.run] { PrintFigures(run(bench_options), json); });
  }
}

void AddNetBenchmark(CLI::App* bench, BenchState& st) {
  auto& net_options = st.net_options;
  bool& json = st.json;
  auto* bench_net =
      bench->add_subcommand("net", "A node over TCP (depth 1 and N) and HTTP keep-alive");
  bench_net->add_flag("--json", json, "Print one flat JSON object");
  bench_net->add_option("--connections", net_options.connections, "Client connections")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  bench_net
      ->add_option("--depth", net_options.depth,
                   "Requests in flight per connection in the pipelined run")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  bench_net
      ->add_option("--transport", net_options.transport,
                   "tcp, or nats: also the same node over NATS (nats_* figures)")
      ->check(CLI::IsMember({"tcp", "nats"}));
  bench_net->add_option(
      "--nats", net_options.nats_url,
      "NATS server with JetStream for --transport nats (default: start nats-server -js on a free "
      "127.0.0.1 port)");
  bench_net->add_option("--seconds", net_options.seconds, "Seconds per run")
      ->check(Positive())
      ->capture_default_str();
  bench_net
      ->add_option("--idle-seconds", net_options.idle_seconds,
                   "Seconds an idle node with stores, a cache, a command log and a projection is "
                   "watched for idle_cpu_percent (0: skip)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  bench_net->callback([&] { PrintFigures(shardkit::bench::RunNetBench(net_options), json); });
}

void AddStoreBenchmark(CLI::App* bench, BenchState& st) {
  auto& store_options = st.store_options;
  bool& json = st.json;
  auto* bench_store = bench->add_subcommand(
      "store", "store:load/save through the bus vs the raw engine (same run)");
  bench_store->add_flag("--json", json, "Print one flat JSON object");
  bench_store->add_option("--backend", store_options.backend, "rocksdb or sqlite")
      ->check(CLI::IsMember({"rocksdb", "sqlite"}))
      ->capture_default_str();
  bench_store->add_option("--entities", store_options.entities, "Entities loaded before measuring")
      ->check(Positive())
      ->capture_default_str();
  bench_store
      ->add_option("--shards", store_options.shards,
                   "Also measure routed loads over this many RocksDB shards")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  bench_store
      ->add_option("--repetitions", store_options.repetitions,
                   "Slices per side, the sides interleaved (the median is reported)")
      ->check(Positive())
      ->capture_default_str();
  bench_store->add_option("--min-time", store_options.min_time_s, "Seconds per run")
      ->check(Positive())
      ->capture_default_str();
  bench_store->add_option("--dir", store_options.dir,
                          "Data directory (default: a temp dir, removed afterwards)");
  bench_store->callback([&] { PrintFigures(shardkit::bench::RunStoreBench(store_options), json); });
}

void AddSplitBenchmark(CLI::App* bench, BenchState& st) {
  auto& split_options = st.split_options;
  bool& json = st.json;
  auto* bench_split = bench->add_subcommand(
      "split", "Live splits under a steady write load: copy rate, lag, write pause");
  bench_split->add_flag("--json", json, "Print one flat JSON object");
  bench_split->add_option("--entities", split_options.entities, "Entities on the first source")
      ->check(Positive())
      ->capture_default_str();
  bench_split
      ->add_option("--writes-per-s", split_options.writes_per_s, "Steady client writes per second")
      ->check(Positive())
      ->capture_default_str();
  bench_split->add_option("--splits", split_options.splits, "Splits to run (at most 5)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  bench_split->add_flag(
      "--remote", st.split_remote,
      "Also move the same entities between two `shardkit serve` processes: a source node (four "
      "RocksDB ranges, the router the writer uses over TCP, the migrator) and a target node; each "
      "range is moved there with cutover and complete. The top-level figures are then the remote "
      "run's (with client_p99_ms_during_copy and remote_vs_local_copy_ratio), the local run's "
      "under local_*");
  bench_split->callback([&] {
    PrintFigures(st.split_remote ? shardkit::bench::RunRemoteSplitBench(split_options)
                                 : shardkit::bench::RunSplitBench(split_options),
                 json);
  });
}

void AddCacheBenchmark(CLI::App* bench, BenchState& st) {
  auto& cache_options = st.cache_options;
  bool& json = st.json;
  auto* bench_cache =
      bench->add_subcommand("cache", "Zipf loads over RocksDB with and without the entry cache");
  bench_cache->add_flag("--json", json, "Print one flat JSON object");
  bench_cache->add_option("--entities", cache_options.entities, "Entities in the store")
      ->check(Positive())
      ->capture_default_str();
  bench_cache
      ->add_option("--clients", cache_options.clients,
                   "Client threads of the two-process runs (in process: 2 and 8)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  bench_cache
      ->add_option("--seconds", cache_options.seconds,
                   "Seconds of each timed two-process run (with and without the cache)")
      ->check(Positive())
      ->capture_default_str();
  bench_cache
      ->add_option("--stale-rounds", cache_options.stale_rounds,
                   "Writes behind the cache's back, each timed until the cache shows it")
      ->check(CLI::Range(1, 100'000))
      ->capture_default_str();
  bench_cache->add_flag("!--no-remote", cache_options.remote,
                        "Leave out the runs with the cache and the store in two processes");
  bench_cache
      ->add_option("--requests", cache_options.requests,
                   "Loads counted for the hit ratios (one fixed key sequence)")
      ->check(Positive())
      ->capture_default_str();
  bench_cache->add_option("--warmup", cache_options.warmup, "Loads before those, not counted")
      ->capture_default_str();
  bench_cache->add_option("--seed", cache_options.seed, "Seed of the key sequence")
      ->capture_default_str();
  bench_cache->callback([&] { PrintFigures(shardkit::bench::RunCacheBench(cache_options), json); });
}

void AddCqrsBenchmark(CLI::App* bench, BenchState& st) {
  auto& cqrs_options = st.cqrs_options;
  bool& json = st.json;
  auto* bench_cqrs = bench->add_subcommand("cqrs", "Command ack throughput and projection lag");
  bench_cqrs->add_flag("--json", json, "Print one flat JSON object");
  bench_cqrs->add_option("--clients", cqrs_options.clients, "Concurrent clients")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  bench_cqrs->add_option("--rate", cqrs_options.lag_rate, "Commands per second while measuring lag")
      ->check(Positive())
      ->capture_default_str();
  bench_cqrs->callback([&] { PrintFigures(shardkit::bench::RunCqrsBench(cqrs_options), json); });
}

// Seneca's client is Node.js: the benchmark is tests/seneca/bench.js (it needs that folder's npm
// packages), run with node in place of this process, with SHARDKIT_BINARY naming this binary.
void AddSenecaBenchmark(CLI::App* bench, BenchState& st) {
  auto* sub = bench->add_subcommand(
      "seneca", "Seneca save$/load$ round trips: mem-store vs the adapter (memory, RocksDB)");
  sub->add_flag("--json", st.json, "Print one flat JSON object");
  sub->add_option("--seconds", st.seneca_seconds, "Seconds per run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--rounds", st.seneca_rounds, "Runs per target, interleaved (median reported)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  sub->add_option("--script", st.seneca_script, "The benchmark script (node)")
      ->capture_default_str();
  sub->callback([&st] {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) setenv("SHARDKIT_BINARY", self.c_str(), 1);
    std::vector<std::string> args = {"node",      st.seneca_script,
                                     "--seconds", std::to_string(st.seneca_seconds),
                                     "--rounds",  std::to_string(st.seneca_rounds)};
    if (st.json) args.push_back("--json");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp("node", argv.data());
    std::cerr << "bench seneca: cannot run node (Debian package nodejs): " << std::strerror(errno)
              << std::endl;
    std::exit(2);
  });
}

}  // namespace

void AddBenchCommands(CLI::App& app) {
  BenchState& st = State();
  auto* bench = app.add_subcommand("bench", "Run a benchmark and print its figures");
  bench->require_subcommand(1);
  AddEngineBenchmarks(bench, st);
  AddNetBenchmark(bench, st);
  AddStoreBenchmark(bench, st);
  AddSplitBenchmark(bench, st);
  AddCacheBenchmark(bench, st);
  AddCqrsBenchmark(bench, st);
  AddSenecaBenchmark(bench, st);
}

}  // namespace shardkit::cli
