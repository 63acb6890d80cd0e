// shardkit's benchmarks, run by `shardkit bench <name>`.
//
// Each benchmark measures shardkit and, where the issue names one, the raw engine or peer in the
// same run, so figures can be read as ratios on a shared, noisy machine. Google Benchmark runs the
// loops (repetitions, iteration counts); each figure is the median over the repetitions.
//
// Thread-safety: one benchmark at a time per process (Google Benchmark's registry is global).
#pragma once

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

// Helpers shared by the benchmarks.
std::string FiguresToJson(const Figures& figures);
std::string FiguresToTable(const Figures& figures);

}  // namespace shardkit::bench
