// Router and codec benchmarks (`shardkit bench router`, `shardkit bench codec`).
#include <fmt/format.h>

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "patrun_compare.h"
#include "runner.h"
#include "shardkit/bench/bench.h"
#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/message/router.h"
#include "stats.h"

namespace shardkit::bench {
namespace {

constexpr std::array<const char*, 4> kOps = {"save", "load", "list", "remove"};

// A typical message: ~170 bytes, four routing-ish properties and a nested entity.
std::string SampleMessage() {
  return R"({"role":"store","cmd":"save","kind":"entry","ent":{"id":"u123","text":")" +
         std::string(
             "The quick brown fox jumps over the lazy dog while shardkit routes its messages...")
             .substr(0, 80) +
         R"(","ts":1700000000}})";
}

std::shared_ptr<Handler> Trivial() {
  return MakeSyncHandler([](Message, const Context&) -> Result<Message> {
    Message reply;
    reply.SetBool("ok", true);
    return reply;
  });
}

// `n` patterns store:<op>,kind:k<i>, and 1024 messages that hit them (4 routing properties plus
// a nested ent), as JSON texts: the same sets go to patrun.
struct MatchSet {
  std::vector<std::string> patterns;  // {"store":"<op>","kind":"k<i>"}
  std::vector<std::string> messages;
  explicit MatchSet(int n) {
    for (int i = 0; i < n; ++i)
      patterns.push_back(
          JsonObject().Add("store", kOps[i % 4]).Add("kind", fmt::format("k{}", i)).str());
    std::mt19937 rng(42);
    for (int j = 0; j < 1024; ++j) {
      int i = static_cast<int>(rng() % n);
      messages.push_back(fmt::format(
          R"({{"store":"{}","kind":"k{}","id":"{}","v":1,"ent":{{"id":"{}","text":"hello"}}}})",
          kOps[i % 4], i, j, j));
    }
  }
};

// A router of the set's patterns and its messages, parsed.
struct MatchFixture {
  Router router;
  std::vector<Message> messages;
  explicit MatchFixture(int n) {
    MatchSet set(n);
    for (int i = 0; i < n; ++i) {
      auto p = Pattern::Parse(fmt::format("store:{},kind:k{}", kOps[i % 4], i));
      (void)router.Add(std::move(p).value(), Trivial());
    }
    for (const auto& text : set.messages) messages.push_back(std::move(ParseMessage(text)).value());
  }
};

void Match(benchmark::State& state, int n) {
  MatchFixture fixture(n);
  size_t i = 0, misses = 0;
  for (auto _ : state) {
    const Route* route = fixture.router.FindBorrowed(fixture.messages[i++ & 1023]);
    misses += (route == nullptr);
    benchmark::DoNotOptimize(route);
  }
  if (misses != 0) state.SkipWithError("a benchmark message found no route");
  state.SetItemsProcessed(state.iterations());
}

void Act(benchmark::State& state) {
  Bus bus;
  (void)bus.Add("store:load,kind:entry", Trivial());
  Message request = std::move(ParseMessage(R"({"store":"load","kind":"entry","id":"42"})")).value();
  // Every act hands on a copy of the one request: shared, as a forwarder hands a message on, so
  // the copy costs a reference count (not a copy of each property).
  request.Share();
  size_t failures = 0;
  AllocationMeter allocations(state);
  for (auto _ : state) {
    bus.Act(request, [&failures](Result<Message> r) { failures += !r.ok(); });
  }
  allocations.Done();
  if (failures != 0) state.SkipWithError("act failed");
  state.SetItemsProcessed(state.iterations());
}

// Acts per second of `threads` threads acting at once on one bus, as a node's I/O threads do, for
// `seconds`: what the bus's shared state (routing table, id counter) costs when cores share it.
double ActsAtOnce(int threads, double seconds) {
  Bus bus;
  (void)bus.Add("store:load,kind:entry", Trivial());
  Message request = std::move(ParseMessage(R"({"store":"load","kind":"entry","id":"42"})")).value();
  request.Share();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acts{0}, failures{0};
  std::vector<std::thread> actors;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    actors.emplace_back([&] {
      uint64_t mine = 0, failed = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 1024; ++i)
          bus.Act(request, [&failed](Result<Message> r) { failed += !r.ok(); });
        mine += 1024;
      }
      acts += mine;
      failures += failed;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& actor : actors) actor.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failures != 0) throw std::runtime_error("bench router: an act failed");
  return static_cast<double>(acts.load()) / elapsed;
}

void Parse(benchmark::State& state) {
  const std::string text = SampleMessage();
  for (auto _ : state) {
    auto m = ParseMessage(text);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
}

void Serialize(benchmark::State& state) {
  Message m = std::move(ParseMessage(SampleMessage())).value();
  std::string out;
  for (auto _ : state) {
    out.clear();
    AppendJson(m, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}

// Parse the sample, route it through a bus of 100 patterns to a handler that echoes the entity
// (as a store save does), serialize the reply.
void RoundTrip(benchmark::State& state) {
  Bus bus;
  for (int i = 0; i < 99; ++i)
    (void)bus.Add(fmt::format("role:store,cmd:{},kind:k{}", kOps[i % 4], i), Trivial());
  (void)bus.Add("role:store,cmd:save,kind:entry",
                MakeSyncHandler([](Message m, const Context&) -> Result<Message> {
                  Message reply;
                  if (auto ent = m.GetObjectJson("ent")) reply.SetObjectJson("ent", *ent);
                  return reply;
                }));
  const std::string text = SampleMessage();
  std::string out;
  size_t failures = 0;
  AllocationMeter allocations(state);
  for (auto _ : state) {
    auto m = ParseMessage(text);
    bus.Act(std::move(m).value(), [&](Result<Message> r) {
      out.clear();
      AppendJson(ToWire(std::move(r)), out);
    });
    failures += out.size() < 100;
  }
  allocations.Done();
  if (failures != 0) state.SkipWithError("round trip produced a short reply");
  state.SetItemsProcessed(state.iterations());
}

// Finds per second of CPU time over `seconds` of it, the clock read once per 1,024 finds (as
// patrun_bench.js does). CPU time, as Google Benchmark's figures above: on a shared machine a
// wall-clock slice measures how much of a core the scheduler gave it, not the matcher.
double MatchSlice(const MatchFixture& fixture, double seconds) {
  auto cpu = [] {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
  };
  const double start = cpu(), until = start + seconds;
  size_t done = 0, misses = 0;
  double now = start;
  while (now < until) {
    for (size_t i = 0; i < 1024; ++i)
      misses += fixture.router.FindBorrowed(fixture.messages[i]) == nullptr;
    done += 1024;
    now = cpu();
  }
  if (misses != 0) throw std::runtime_error("a benchmark message found no route");
  return static_cast<double>(done) / (now - start);
}

// This matcher and patrun on the same sets, slices interleaved: patrun_per_s_<n> and the ratios.
// Null figures when patrun cannot run (no node, or tests/seneca's npm packages not installed).
Figures PatrunFigures(const Options& options) {
  constexpr std::array<int, 2> kSizes = {100, 10000};
  const auto fixture_path = std::filesystem::temp_directory_path() /
                            fmt::format("shardkit-bench-patrun-{}.json", getpid());
  {
    JsonObject sets;
    for (int n : kSizes) {
      MatchSet set(n);
      std::string patterns = "[", messages = "[";
      for (const auto& p : set.patterns) patterns += (patterns.size() > 1 ? "," : "") + p;
      for (const auto& m : set.messages) messages += (messages.size() > 1 ? "," : "") + m;
      sets.Add(std::to_string(n),
               JsonObject().AddRaw("patterns", patterns + "]").AddRaw("messages", messages + "]"));
    }
    std::ofstream(fixture_path) << sets.str();
  }
  auto patrun = PatrunMatcher::Start(options.patrun_script, fixture_path.string());
  std::map<int, std::unique_ptr<MatchFixture>> fixtures;
  for (int n : kSizes) fixtures[n] = std::make_unique<MatchFixture>(n);
  std::map<int, std::vector<double>> ours, theirs;
  // Round -1 warms both sides up (patrun's JIT compiles find; this side's caches fill) and is
  // not counted.
  for (int round = -1; patrun && round < options.repetitions; ++round) {
    for (int n : kSizes) {
      const double us = MatchSlice(*fixtures[n], options.min_time_s);
      const double them = patrun->Slice(n, options.min_time_s);
      if (round < 0) continue;
      ours[n].push_back(us);
      theirs[n].push_back(them);
    }
  }
  patrun.reset();
  std::filesystem::remove(fixture_path);
  Figures figures;
  for (int n : kSizes) {
    const double them = Median(theirs[n]), us = Median(ours[n]);
    const bool ok =
        them > 0 && std::find(theirs[n].begin(), theirs[n].end(), 0.0) == theirs[n].end();
    figures.emplace_back(fmt::format("patrun_per_s_{}", n), ok ? them : std::nan(""));
    figures.emplace_back(fmt::format("match_vs_patrun_{}", n), ok ? us / them : std::nan(""));
  }
  return figures;
}

}  // namespace

Figures RunRouterBench(const Options& options) {
  Register(
      "match_10", [](benchmark::State& s) { Match(s, 10); }, options);
  Register(
      "match_100", [](benchmark::State& s) { Match(s, 100); }, options);
  Register(
      "match_10000", [](benchmark::State& s) { Match(s, 10000); }, options);
  Register("act", Act, options);
  auto m = RunRegistered();
  Figures figures = {{"match_per_s_10", m["match_10"]},
                     {"match_per_s_100", m["match_100"]},
                     {"match_per_s_10000", m["match_10000"]},
                     {"act_per_s", m["act"]},
                     {"allocs_per_act", AllocsFigure(m, "act")}};
  std::vector<double> two;
  for (int r = 0; r < options.repetitions; ++r) two.push_back(ActsAtOnce(2, options.min_time_s));
  figures.push_back({"act_per_s_2_threads", Median(two)});
  for (auto& figure : PatrunFigures(options)) figures.push_back(std::move(figure));
  return figures;
}

// On one CPU: the codec has no baseline in the run to share a move between CPUs with.
Figures RunCodecBench(const Options& options) {
  PinnedToThisCpu pinned;
  Register("parse", Parse, options);
  Register("serialize", Serialize, options);
  Register("roundtrip", RoundTrip, options);
  auto m = RunRegistered();
  return {{"parse_per_s", m["parse"]},
          {"serialize_per_s", m["serialize"]},
          {"roundtrip_per_s", m["roundtrip"]},
          {"allocs_per_roundtrip", AllocsFigure(m, "roundtrip")},
          {"sample_bytes", static_cast<double>(SampleMessage().size())},
          {"pinned_cpu", static_cast<double>(pinned.cpu())}};
}

}  // namespace shardkit::bench
