// Runs Google Benchmark functions and collects the median of a counter per benchmark.
#pragma once

#include <benchmark/benchmark.h>
#include <sched.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "shardkit/bench/allocations.h"
#include "shardkit/bench/bench.h"

namespace shardkit::bench {

// Registers `fn` as benchmark `name`; its items_per_second median becomes a figure.
void Register(const std::string& name, std::function<void(benchmark::State&)> fn,
              const Options& options);
// Registers `sides` to run in turn, options.repetitions slices of each (a, b, c, a, b, c, …), so
// that drift in a shared machine's load hits every side alike; each side's figure is the median
// of its slices.
void RegisterInterleaved(
    const std::vector<std::pair<std::string, std::function<void(benchmark::State&)>>>& sides,
    const Options& options);
// Runs everything registered since the last call; returns name -> median items_per_second, and
// name + ".allocs" -> median allocations per item for the benchmarks that use AllocationMeter.
std::map<std::string, double> RunRegistered();

// Counts the allocations (on every thread) from its construction, just before a benchmark's
// loop, to Done, just after it, as the benchmark's allocations per item.
class AllocationMeter {
 public:
  explicit AllocationMeter(benchmark::State& state) : state_(state), start_(Allocations()) {}
  void Done() {
    state_.counters["allocs_per_item"] = benchmark::Counter(
        static_cast<double>(Allocations() - start_), benchmark::Counter::kAvgIterations);
  }

 private:
  benchmark::State& state_;
  uint64_t start_;
};

// The figure for `name`'s allocations per item: null (NaN) when this program does not count.
double AllocsFigure(const std::map<std::string, double>& medians, const std::string& name);

// Pins the calling thread to the CPU it is on until destroyed, then gives it back the CPUs it had:
// a single-threaded benchmark without a baseline in the same run is then not moved from one CPU
// to another while it measures (on a VM each move showed as a slower run). cpu() is -1 where
// pinning failed (the thread then runs as before).
class PinnedToThisCpu {
 public:
  PinnedToThisCpu();
  ~PinnedToThisCpu();
  PinnedToThisCpu(const PinnedToThisCpu&) = delete;
  PinnedToThisCpu& operator=(const PinnedToThisCpu&) = delete;
  int cpu() const { return cpu_; }

 private:
  int cpu_ = -1;
  cpu_set_t previous_;
};

}  // namespace shardkit::bench
