// Router and codec benchmarks (`shardkit bench router`, `shardkit bench codec`).
#include <fmt/format.h>

#include <array>
#include <random>

#include "runner.h"
#include "shardkit/bench/bench.h"
#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/router.h"

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

// A router of `n` patterns store:<op>,kind:k<i>, and 1024 pre-parsed messages that hit them
// (4 routing properties plus a nested ent).
struct MatchFixture {
  Router router;
  std::vector<Message> messages;
  explicit MatchFixture(int n) {
    for (int i = 0; i < n; ++i) {
      auto p = Pattern::Parse(fmt::format("store:{},kind:k{}", kOps[i % 4], i));
      (void)router.Add(std::move(p).value(), Trivial());
    }
    std::mt19937 rng(42);
    for (int j = 0; j < 1024; ++j) {
      int i = static_cast<int>(rng() % n);
      auto m = ParseMessage(fmt::format(
          R"({{"store":"{}","kind":"k{}","id":"{}","v":1,"ent":{{"id":"{}","text":"hello"}}}})",
          kOps[i % 4], i, j, j));
      messages.push_back(std::move(m).value());
    }
  }
};

void Match(benchmark::State& state, int n) {
  MatchFixture fixture(n);
  size_t i = 0, misses = 0;
  for (auto _ : state) {
    auto route = fixture.router.Find(fixture.messages[i++ & 1023]);
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
  size_t failures = 0;
  AllocationMeter allocations(state);
  for (auto _ : state) {
    bus.Act(request, [&failures](Result<Message> r) { failures += !r.ok(); });
  }
  allocations.Done();
  if (failures != 0) state.SkipWithError("act failed");
  state.SetItemsProcessed(state.iterations());
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
  return {{"match_per_s_10", m["match_10"]},
          {"match_per_s_100", m["match_100"]},
          {"match_per_s_10000", m["match_10000"]},
          {"act_per_s", m["act"]},
          {"allocs_per_act", AllocsFigure(m, "act")}};
}

Figures RunCodecBench(const Options& options) {
  Register("parse", Parse, options);
  Register("serialize", Serialize, options);
  Register("roundtrip", RoundTrip, options);
  auto m = RunRegistered();
  return {{"parse_per_s", m["parse"]},
          {"serialize_per_s", m["serialize"]},
          {"roundtrip_per_s", m["roundtrip"]},
          {"allocs_per_roundtrip", AllocsFigure(m, "roundtrip")},
          {"sample_bytes", static_cast<double>(SampleMessage().size())}};
}

}  // namespace shardkit::bench
