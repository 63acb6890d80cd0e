// shardkit's benchmarks, run by `shardkit bench <name>`.
//
// Each benchmark measures shardkit and, where the issue names one, the raw engine or peer in the
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
  int repetitions = 5;       // median over this many runs
  double min_time_s = 0.2;   // per repetition
};

// Flat, ordered figures: printed as one JSON object ({"match_per_s_10": 1.2e7, …}).
using Figures = std::vector<std::pair<std::string, double>>;

// match_per_s_10, match_per_s_100, match_per_s_10000, act_per_s.
Figures RunRouterBench(const Options& options);
// parse_per_s, serialize_per_s, roundtrip_per_s.
Figures RunCodecBench(const Options& options);

struct StoreBenchOptions {
  std::string backend = "rocksdb";  // rocksdb | sqlite
  uint64_t entities = 1'000'000;    // loaded before measuring (16-byte ids, ~100-byte values)
  int repetitions = 3;
  double min_time_s = 1.0;
  std::string dir;  // where the data goes; empty: a temp dir removed afterwards
};
// raw_read_per_s, raw_write_per_s, load_per_s, save_per_s, load_ratio, save_ratio, peak_rss_mb.
// Throws std::runtime_error if the store cannot be opened or loaded.
Figures RunStoreBench(const StoreBenchOptions& options);

// Helpers shared by the benchmarks.
std::string FiguresToJson(const Figures& figures);
std::string FiguresToTable(const Figures& figures);

}  // namespace shardkit::bench
