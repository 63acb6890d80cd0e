// Runs Google Benchmark functions and collects the median of a counter per benchmark.
#pragma once

#include <benchmark/benchmark.h>

#include <functional>
#include <map>
#include <string>

#include "shardkit/bench/bench.h"

namespace shardkit::bench {

// Registers `fn` as benchmark `name`; its items_per_second median becomes a figure.
void Register(const std::string& name, std::function<void(benchmark::State&)> fn,
              const Options& options);
// Runs everything registered since the last call; returns name -> median items_per_second.
std::map<std::string, double> RunRegistered();

}  // namespace shardkit::bench
