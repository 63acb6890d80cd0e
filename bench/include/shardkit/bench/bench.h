// shardkit's benchmarks, run by `shardkit bench <name>`.
//
// Each benchmark measures shardkit and, where one exists, the raw engine or peer in the
// same run, so figures can be read as ratios on a shared, noisy machine. Google Benchmark runs the
// loops (repetitions, iteration counts); each figure is the median over the repetitions.
//
// Thread-safety: one benchmark at a time per process (Google Benchmark's registry is global).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace shardkit::bench {

struct Options {
  int repetitions = 5;      // median over this many runs
  double min_time_s = 0.2;  // per repetition
  // router: the Node.js script timing patrun on the same patterns (tests/seneca/patrun_bench.js);
  // empty, or node or its npm packages missing: the patrun figures are null.
  std::string patrun_script;
};

// Flat, ordered figures: printed as one JSON object ({"match_per_s_10": 1.2e7, …}).
using Figures = std::vector<std::pair<std::string, double>>;

// match_per_s_10, match_per_s_100, match_per_s_10000, act_per_s, allocs_per_act, and
// patrun_per_s_<n> / match_vs_patrun_<n> for n = 100 and 10000.
Figures RunRouterBench(const Options& options);
// parse_per_s, serialize_per_s, roundtrip_per_s.
Figures RunCodecBench(const Options& options);

struct StoreBenchOptions {
  std::string backend = "rocksdb";  // rocksdb | sqlite
  uint64_t entities = 1'000'000;    // loaded before measuring (16-byte ids, ~100-byte values)
  int repetitions = 3;
  double min_time_s = 1.0;
  std::string dir;  // where the data goes; empty: a temp dir removed afterwards
  int shards = 1;   // > 1: also store:load through the shard router over this many RocksDB shards
  // With shards > 1: the routed and the single-store loads also from this many threads at once.
  int load_threads = 2;
};
// raw_read_per_s, raw_write_per_s, load_per_s, save_per_s, load_ratio, save_ratio, peak_rss_mb.
// Throws std::runtime_error if the store cannot be opened or loaded.
Figures RunStoreBench(const StoreBenchOptions& options);

// A node over the network, measured from clients in the same process (net_bench.cc).
struct NetOptions {
  int connections = 50;
  int depth = 16;  // requests in flight per connection in the pipelined TCP run
  // The bench's own client threads (TCP, TLS, HTTP; the connections dealt out among them). Two:
  // one thread's TLS work (OpenSSL's per record) capped the TLS runs below what the node serves.
  int client_threads = 2;
  int node_threads = 2;           // the node's I/O threads ([node] threads)
  double seconds = 2.0;           // per run
  std::string transport = "tcp";  // "nats": also the same node over NATS
  std::string nats_url;           // empty: start nats-server on a free 127.0.0.1 port
  double idle_seconds = 10.0;     // idle_cpu_percent is measured over this long; 0: not measured
};
// tcp_depth1_per_s, tcp_depth16_per_s, http_per_s, tcp_depth1_p50_ms, tcp_depth1_p99_ms,
// tcp_depth16_p99_ms, idle_rss_mb (tcp_depth16_* is measured at options.depth), idle_cpu_percent
// (percent of one core used by an idle node with stores, a cache, a command log and a projection,
// over idle_seconds, before the traffic runs).
// With transport "nats": nats_depth16_per_s, nats_p99_ms and nats_vs_tcp_ratio
// (nats_depth16_per_s / tcp_depth16_per_s, both in this run: the two take turns in six slices
// of seconds/6 each, so a slow spell of a shared machine weighs on both). tls_depth1_per_s and
// tls_depth16_per_s (the TCP runs over a tls:// listener) take turns with tcp_* the same way;
// tls_vs_tcp_depth1_ratio and tls_vs_tcp_depth16_ratio divide the totals, and the *_median_ratio
// figures are the median of the six slice pairs' ratios. redis_depth1_per_s and
// redis_depth16_per_s: redis-benchmark's GETs on a redis-server with the same keys and value
// size, same connections and depth, in the same turns; tcp_vs_redis_depth{1,16}_ratio and their
// *_median_ratio; null when redis-server or redis-benchmark is missing (stderr says why).
// http_per_s is measured in slices taking turns with tcp_depth1_* the same way;
// http_vs_tcp_depth1_ratio is http_per_s / tcp_depth1_per_s, and its *_median_ratio.
Figures RunNetBench(const NetOptions& options);

// CQRS (cqrs_bench.cc): command acks through the bus with `clients` concurrent clients (group
// commit, Durability::kGroup), then projection lag at a steady `lag_rate` commands/s.
struct CqrsBenchOptions {
  int clients = 50;
  double ack_seconds = 2.0;
  double lag_rate = 20'000;  // commands per second
  double lag_seconds = 3.0;
  std::string dir;  // where the data goes; empty: a temp dir removed afterwards
};
// ack_per_s (`clients` asynchronous clients, one command in flight each), ack_per_s_threads (the
// same with one blocking thread per client), lag_p50_ms, lag_p99_ms. Throws std::runtime_error if
// a log or store cannot be opened or the projection does not catch up.
Figures RunCqrsBench(const CqrsBenchOptions& options);

struct SplitBenchOptions {
  uint64_t entities = 1'000'000;  // on the first source
  int writes_per_s = 5'000;       // the steady client load during the splits
  int splits = 5;
};
// copy_per_s, catchup_lag_max_ms, pause_median_ms, pause_max_ms, client_errors, lost_writes.
Figures RunSplitBench(const SplitBenchOptions& options);
// The same entities moved across processes (split_remote_bench.cc): a source `shardkit serve`
// node with four RocksDB ranges and a target node; each range moved to the target in turn under
// `writes_per_s` client writes over TCP (options.splits is for the local run only). The remote
// run's copy_per_s, catchup_lag_max_ms, pause_median_ms, pause_max_ms, client_errors, lost_writes,
// cutover_gate_median_ms, cutover_gate_max_ms (the migrator's own pause_ms),
// client_p99_ms_during_copy, rows_copied, moves, entities; remote_vs_local_copy_ratio; then the
// local run (RunSplitBench, same options, first) as local_<figure>. Throws std::runtime_error if a
// node does not start or a migration step fails.
Figures RunRemoteSplitBench(const SplitBenchOptions& options);

struct CacheBenchOptions {
  size_t entities = 100'000;      // on RocksDB behind the cache
  double zipf_s = 0.99;           // load workload skew
  double cached_fraction = 0.10;  // the cache holds this share of the entities
  // One fixed Zipf key sequence from `seed`: `warmup` loads, then `requests` counted ones. The hit
  // ratios (this cache, a plain LRU of its size, Belady's optimum) and the in-process runs (at
  // each of `threads` client threads, with and without the cache) all use it.
  size_t requests = 4'000'000;
  size_t warmup = 1'000'000;
  uint64_t seed = 42;
  // The in-process runs' client threads, each run once, ascending: speedup_<n> for each.
  std::vector<int> threads = {2, 8};
  // The two-process runs (the cache's node and the store's node over TCP): `clients` client
  // threads on the same key sequence, timed runs of `seconds` each; `stale_rounds` writes behind
  // the cache's back. remote = false leaves them out.
  bool remote = true;
  int clients = 8;
  double seconds = 3;
  int stale_rounds = 200;
};
// hit_ratio, lru_hit_ratio, optimal_hit_ratio; with_cache_per_s_N, without_cache_per_s_N,
// speedup_N, driven_hit_ratio_N for N = 2 and 8 client threads in this process; hit_p50_ms,
// hit_p99_ms, store_loads_for_100_concurrent_misses, answered_of_100, errors, cache_bytes; then
// the remote figures (cache_bench.h, RunRemote).
Figures RunCacheBench(const CacheBenchOptions& options);

// Helpers shared by the benchmarks.
std::string FiguresToJson(const Figures& figures);
std::string FiguresToTable(const Figures& figures);

}  // namespace shardkit::bench
