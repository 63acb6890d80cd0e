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

// A benchmark's subcommand, with the --json flag every one takes.
CLI::App* AddBench(CLI::App* bench, BenchState& st, const char* name, const char* help) {
  auto* sub = bench->add_subcommand(name, help);
  sub->add_flag("--json", st.json, "Print one flat JSON object");
  return sub;
}

// An option that shows its default in --help and refuses a value `check` does not accept.
template <typename T>
void AddChecked(CLI::App* app, const char* name, T& value, const char* help,
                const CLI::Validator& check) {
  app->add_option(name, value, help)->check(check)->capture_default_str();
}

void AddEngineBenchmarks(CLI::App* bench, BenchState& st) {
  auto& bench_options = st.bench_options;
  for (const BenchCommand& command : kBenchCommands) {
    auto* sub = AddBench(bench, st, command.name, command.help);
    AddChecked(sub, "--repetitions", bench_options.repetitions,
               "Runs per figure (the median is reported)", Positive());
    AddChecked(sub, "--min-time", bench_options.min_time_s, "Seconds per run", Positive());
    if (std::string_view(command.name) == "router") {
      sub->add_option("--patrun-script", bench_options.patrun_script,
                      "Node.js script timing patrun on the same patterns (needs node and "
                      "tests/seneca's npm packages; empty: no patrun figures)")
          ->capture_default_str();
    }
    sub->callback([&, run = command.run] { PrintFigures(run(bench_options), st.json); });
  }
}

void AddNetBenchmark(CLI::App* bench, BenchState& st) {
  auto& options = st.net_options;
  auto* sub = AddBench(bench, st, "net", "A node over TCP (depth 1 and N) and HTTP keep-alive");
  AddChecked(sub, "--connections", options.connections, "Client connections", CLI::Range(1, 1000));
  AddChecked(sub, "--depth", options.depth,
             "Requests in flight per connection in the pipelined run", CLI::Range(1, 1024));
  AddChecked(sub, "--client-threads", options.client_threads,
             "Threads of the bench's TCP, TLS and HTTP clients, the connections dealt out among "
             "them (redis-benchmark keeps its single-threaded mode, faster in these short runs)",
             CLI::Range(1, 16));
  AddChecked(sub, "--node-threads", options.node_threads,
             "I/O threads of the node measured ([node] threads)", CLI::Range(1, 16));
  sub->add_option("--transport", options.transport,
                  "tcp, or nats: also the same node over NATS (nats_* figures)")
      ->check(CLI::IsMember({"tcp", "nats"}));
  sub->add_option(
      "--nats", options.nats_url,
      "NATS server with JetStream for --transport nats (default: start nats-server -js on a free "
      "127.0.0.1 port)");
  AddChecked(sub, "--seconds", options.seconds, "Seconds per run", Positive());
  AddChecked(sub, "--idle-seconds", options.idle_seconds,
             "Seconds an idle node with stores, a cache, a command log and a projection is "
             "watched for idle_cpu_percent (0: skip)",
             CLI::NonNegativeNumber);
  sub->callback([&] { PrintFigures(shardkit::bench::RunNetBench(options), st.json); });
}

void AddStoreBenchmark(CLI::App* bench, BenchState& st) {
  auto& options = st.store_options;
  auto* sub =
      AddBench(bench, st, "store", "store:load/save through the bus vs the raw engine (same run)");
  AddChecked(sub, "--backend", options.backend, "rocksdb or sqlite",
             CLI::IsMember({"rocksdb", "sqlite"}));
  AddChecked(sub, "--entities", options.entities, "Entities loaded before measuring", Positive());
  AddChecked(sub, "--shards", options.shards,
             "Also measure routed loads over this many RocksDB shards", CLI::Range(1, 64));
  AddChecked(sub, "--load-threads", options.load_threads,
             "With --shards: the routed and single-store loads also from this many threads",
             CLI::Range(1, 64));
  AddChecked(sub, "--repetitions", options.repetitions,
             "Slices per side, the sides interleaved (the median is reported)", Positive());
  AddChecked(sub, "--min-time", options.min_time_s, "Seconds per run", Positive());
  sub->add_option("--dir", options.dir, "Data directory (default: a temp dir, removed afterwards)");
  sub->callback([&] { PrintFigures(shardkit::bench::RunStoreBench(options), st.json); });
}

void AddSplitBenchmark(CLI::App* bench, BenchState& st) {
  auto& options = st.split_options;
  auto* sub = AddBench(bench, st, "split",
                       "Live splits under a steady write load: copy rate, lag, write pause");
  AddChecked(sub, "--entities", options.entities, "Entities on the first source", Positive());
  AddChecked(sub, "--writes-per-s", options.writes_per_s, "Steady client writes per second",
             Positive());
  AddChecked(sub, "--splits", options.splits, "Splits to run (at most 5)", CLI::Range(1, 5));
  sub->add_flag(
      "--remote", st.split_remote,
      "Also move the same entities between two `shardkit serve` processes: a source node (four "
      "RocksDB ranges, the router the writer uses over TCP, the migrator) and a target node; each "
      "range is moved there with cutover and complete. The top-level figures are then the remote "
      "run's (with client_p99_ms_during_copy and remote_vs_local_copy_ratio), the local run's "
      "under local_*");
  sub->callback([&] {
    PrintFigures(st.split_remote ? shardkit::bench::RunRemoteSplitBench(options)
                                 : shardkit::bench::RunSplitBench(options),
                 st.json);
  });
}

void AddCacheBenchmark(CLI::App* bench, BenchState& st) {
  auto& options = st.cache_options;
  auto* sub =
      AddBench(bench, st, "cache", "Zipf loads over RocksDB with and without the entry cache");
  AddChecked(sub, "--entities", options.entities, "Entities in the store", Positive());
  AddChecked(sub, "--clients", options.clients, "Client threads of the two-process runs",
             CLI::Range(1, 256));
  sub->add_option("--threads", options.threads,
                  "Client threads of the in-process runs, one run each (speedup_<n>)")
      ->check(CLI::Range(1, 256))
      ->expected(1, 16)
      ->delimiter(',')
      ->capture_default_str();
  AddChecked(sub, "--seconds", options.seconds,
             "Seconds of each timed two-process run (with and without the cache)", Positive());
  AddChecked(sub, "--stale-rounds", options.stale_rounds,
             "Writes behind the cache's back, each timed until the cache shows it",
             CLI::Range(1, 100'000));
  sub->add_flag("!--no-remote", options.remote,
                "Leave out the runs with the cache and the store in two processes");
  AddChecked(sub, "--requests", options.requests,
             "Loads counted for the hit ratios (one fixed key sequence)", Positive());
  sub->add_option("--warmup", options.warmup, "Loads before those, not counted")
      ->capture_default_str();
  sub->add_option("--seed", options.seed, "Seed of the key sequence")->capture_default_str();
  sub->callback([&] { PrintFigures(shardkit::bench::RunCacheBench(options), st.json); });
}

void AddCqrsBenchmark(CLI::App* bench, BenchState& st) {
  auto& options = st.cqrs_options;
  auto* sub = AddBench(bench, st, "cqrs", "Command ack throughput and projection lag");
  AddChecked(sub, "--clients", options.clients, "Concurrent clients", CLI::Range(1, 1000));
  AddChecked(sub, "--rate", options.lag_rate, "Commands per second while measuring lag",
             Positive());
  sub->callback([&] { PrintFigures(shardkit::bench::RunCqrsBench(options), st.json); });
}

// Seneca's client is Node.js: the benchmark is tests/seneca/bench.js (it needs that folder's npm
// packages), run with node in place of this process, with SHARDKIT_BINARY naming this binary.
void AddSenecaBenchmark(CLI::App* bench, BenchState& st) {
  auto* sub =
      AddBench(bench, st, "seneca",
               "Seneca save$/load$ round trips: mem-store vs the adapter (memory, RocksDB)");
  AddChecked(sub, "--seconds", st.seneca_seconds, "Seconds per run", CLI::PositiveNumber);
  AddChecked(sub, "--rounds", st.seneca_rounds, "Runs per target, interleaved (median reported)",
             CLI::Range(1, 100));
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
