#include "runner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <pthread.h>

#include <fmt/format.h>

namespace shardkit::bench {
namespace {

constexpr char kSliceMark = '@';

class MedianCollector : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      // With one repetition there are no aggregates: the one run is the median.
      bool single = runs.size() == 1 && run.run_type == Run::RT_Iteration;
      if (!single && (run.run_type != Run::RT_Aggregate || run.aggregate_name != "median"))
        continue;
      auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) medians[run.run_name.function_name] = it->second.value;
      auto allocs = run.counters.find("allocs_per_item");
      if (allocs != run.counters.end())
        medians[run.run_name.function_name + ".allocs"] = allocs->second.value;
    }
  }
  std::map<std::string, double> medians;
};

void InitializeOnce() {
  static bool done = [] {
    int argc = 1;
    char name[] = "shardkit";
    char* argv[] = {name, nullptr};
    benchmark::Initialize(&argc, argv);
    return true;
  }();
  (void)done;
}

}  // namespace

void Register(const std::string& name, std::function<void(benchmark::State&)> fn,
              const Options& options) {
  InitializeOnce();
  benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& state) { fn(state); })
      ->Repetitions(options.repetitions)
      ->ReportAggregatesOnly(true)
      ->MinTime(options.min_time_s)
      ->Unit(benchmark::kNanosecond);
}

void RegisterInterleaved(
    const std::vector<std::pair<std::string, std::function<void(benchmark::State&)>>>& sides,
    const Options& options) {
  InitializeOnce();
  for (int slice = 0; slice < std::max(1, options.repetitions); ++slice) {
    for (const auto& [name, fn] : sides) {
      benchmark::RegisterBenchmark(fmt::format("{}{}{}", name, kSliceMark, slice).c_str(),
                                   [fn](benchmark::State& state) { fn(state); })
          ->MinTime(options.min_time_s)
          ->Unit(benchmark::kNanosecond);
    }
  }
}

std::map<std::string, double> RunRegistered() {
  MedianCollector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  benchmark::ClearRegisteredBenchmarks();
  // Slices of one side ("load@0", "load@1", … and their ".allocs") fold into their median.
  std::map<std::string, std::vector<double>> slices;
  std::map<std::string, double> out;
  for (const auto& [name, value] : collector.medians) {
    size_t mark = name.find(kSliceMark);
    if (mark == std::string::npos) {
      out[name] = value;
      continue;
    }
    size_t suffix = name.find('.', mark);
    std::string side =
        name.substr(0, mark) + (suffix == std::string::npos ? "" : name.substr(suffix));
    slices[side].push_back(value);
  }
  for (auto& [side, values] : slices) {
    std::sort(values.begin(), values.end());
    out[side] = values.size() % 2 == 1
                    ? values[values.size() / 2]
                    : (values[values.size() / 2 - 1] + values[values.size() / 2]) / 2;
  }
  return out;
}

double AllocsFigure(const std::map<std::string, double>& medians, const std::string& name) {
  auto it = medians.find(name + ".allocs");
  if (!AllocationsCounted() || it == medians.end()) return std::nan("");
  return it->second;
}

PinnedToThisCpu::PinnedToThisCpu() {
  if (pthread_getaffinity_np(pthread_self(), sizeof previous_, &previous_) != 0) return;
  const int cpu = sched_getcpu();
  if (cpu < 0) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0) cpu_ = cpu;
}

PinnedToThisCpu::~PinnedToThisCpu() {
  if (cpu_ >= 0) (void)pthread_setaffinity_np(pthread_self(), sizeof previous_, &previous_);
}

std::string FiguresToJson(const Figures& figures) {
  std::string out = "{";
  for (size_t i = 0; i < figures.size(); ++i) {
    if (i) out += ',';
    double v = figures[i].second;
    if (std::isfinite(v)) {
      fmt::format_to(std::back_inserter(out), "\"{}\":{}", figures[i].first,
                     std::abs(v) >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.4g}", v));
    } else {
      fmt::format_to(std::back_inserter(out), "\"{}\":null", figures[i].first);
    }
  }
  return out + "}";
}

std::string FiguresToTable(const Figures& figures) {
  std::string out;
  for (const auto& [name, value] : figures) {
    fmt::format_to(std::back_inserter(out), "{:<28} {:>16.4g}\n", name, value);
  }
  return out;
}

}  // namespace shardkit::bench
