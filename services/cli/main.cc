// `shardkit`: the one binary. Subcommands: serve, act, explain, routes, stats, reload (commands.h),
// bench, demo, version (migrate comes with its issue). Exit codes: 0 ok, 1 error reply, 2 usage or
// connection error.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "commands.h"
#include "microblog/demo.h"
#include "microblog/services.h"
#include "migrate_command.h"
#include "shardkit/bench/bench.h"
#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"
#include "shardkit/services/data_services.h"

namespace {

using shardkit::bench::Figures;

void PrintFigures(const Figures& figures, bool json) {
  if (json) {
    std::cout << shardkit::bench::FiguresToJson(figures) << std::endl;
  } else {
    std::cout << shardkit::bench::FiguresToTable(figures);
  }
}

// `shardkit demo --routing`: the microblog's first moves (routing, override, observers), on the
// in-process bus.
int RunRouterDemo() {
  using namespace shardkit;
  Bus bus;
  auto say = [](std::string_view what) { fmt::print("\n== {}\n", what); };
  auto send = [&](std::string_view json) {
    auto message = ParseMessage(json);
    if (!message.ok()) {
      fmt::print("  {} -> {}\n", json, message.status().ToString());
      return;
    }
    auto explanation = bus.routes()->Explain(*message);
    auto reply = bus.ActAndWait(std::move(message).value());
    fmt::print("  {}\n    route: {}\n    reply: {}\n", json, explanation.summary,
               ToJson(ToWire(std::move(reply))));
  };

  say("A store service answers store:*,kind:entry");
  (void)bus.Add(
      "store:*,kind:entry", MakeSyncHandler([](Message m, const Context&) -> Result<Message> {
        Message reply;
        reply.SetString("served_by", "entry-store").SetString("op", *m.GetString("store"));
        return reply;
      }),
      "entry-store");
  send(R"({"store":"load","kind":"entry","id":"1"})");
  send(R"({"store":"load","kind":"user","id":"1"})");

  say("Additivity: a cache overrides the pattern and still reaches the store as its prior");
  (void)bus.Override("store:*,kind:entry",
                     MakeHandler([](Message m, const Context& ctx, ReplyFn reply) {
                       ctx.Prior(std::move(m), [reply](Result<Message> r) {
                         if (r.ok()) r->SetBool("via_cache", true);
                         reply(std::move(r));
                       });
                     }),
                     "entry-cache");
  send(R"({"store":"load","kind":"entry","id":"1"})");

  say("Most specific wins: a dedicated handler for loads of entry 42");
  (void)bus.Add("store:load,kind:entry,id:42",
                MakeSyncHandler([](Message, const Context&) -> Result<Message> {
                  return Message().SetString("served_by", "hot-entry");
                }),
                "hot-entry");
  send(R"({"store":"load","kind":"entry","id":42})");

  say("Sidewinder: info:entry is published to every observer");
  for (const char* name : {"index", "timeline"}) {
    (void)bus.Observe("info:entry",
                      MakeSyncHandler([name](Message m, const Context&) -> Result<Message> {
                        fmt::print("  {} observed {}\n", name, ToJson(m));
                        return m;
                      }));
  }
  bus.Publish(std::move(ParseMessage(R"({"info":"entry","ent":{"text":"hello"}})")).value());

  say("Bad input is refused with a clear error");
  send(R"({"store":"load",)");
  return 0;
}

}  // namespace

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

int main(int argc, char** argv) {
  CLI::App app{"shardkit: sharded, message-driven storage"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "shardkit 0.1.0");
  int exit_code = 0;

  shardkit::bench::Options bench_options;
  bool json = false;
  auto* bench = app.add_subcommand("bench", "Run a benchmark and print its figures");
  bench->require_subcommand(1);
  for (const BenchCommand& command : kBenchCommands) {
    auto* sub = bench->add_subcommand(command.name, command.help);
    sub->add_flag("--json", json, "Print one flat JSON object");
    sub->add_option("--repetitions", bench_options.repetitions,
                    "Runs per figure (the median is reported)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    sub->add_option("--min-time", bench_options.min_time_s, "Seconds per run")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    sub->callback([&, run = command.run] { PrintFigures(run(bench_options), json); });
  }

  shardkit::bench::NetOptions net_options;
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
  bench_net->add_option("--nats", net_options.nats_url,
                        "NATS server for --transport nats (default: start nats-server on a free "
                        "127.0.0.1 port)");
  bench_net->add_option("--seconds", net_options.seconds, "Seconds per run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_net
      ->add_option("--idle-seconds", net_options.idle_seconds,
                   "Seconds an idle node with stores, a cache, a command log and a projection is "
                   "watched for idle_cpu_percent (0: skip)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  bench_net->callback([&] { PrintFigures(shardkit::bench::RunNetBench(net_options), json); });

  shardkit::bench::StoreBenchOptions store_options;
  auto* bench_store = bench->add_subcommand(
      "store", "store:load/save through the bus vs the raw engine (same run)");
  bench_store->add_flag("--json", json, "Print one flat JSON object");
  bench_store->add_option("--backend", store_options.backend, "rocksdb or sqlite")
      ->check(CLI::IsMember({"rocksdb", "sqlite"}))
      ->capture_default_str();
  bench_store->add_option("--entities", store_options.entities, "Entities loaded before measuring")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_store
      ->add_option("--shards", store_options.shards,
                   "Also measure routed loads over this many RocksDB shards")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  bench_store
      ->add_option("--repetitions", store_options.repetitions,
                   "Runs per figure (the median is reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_store->add_option("--min-time", store_options.min_time_s, "Seconds per run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_store->add_option("--dir", store_options.dir,
                          "Data directory (default: a temp dir, removed afterwards)");
  bench_store->callback([&] { PrintFigures(shardkit::bench::RunStoreBench(store_options), json); });

  shardkit::bench::SplitBenchOptions split_options;
  auto* bench_split = bench->add_subcommand(
      "split", "Live splits under a steady write load: copy rate, lag, write pause");
  bench_split->add_flag("--json", json, "Print one flat JSON object");
  bench_split->add_option("--entities", split_options.entities, "Entities on the first source")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_split
      ->add_option("--writes-per-s", split_options.writes_per_s, "Steady client writes per second")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_split->add_option("--splits", split_options.splits, "Splits to run (at most 5)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  bench_split->callback([&] { PrintFigures(shardkit::bench::RunSplitBench(split_options), json); });

  shardkit::bench::CacheBenchOptions cache_options;
  auto* bench_cache =
      bench->add_subcommand("cache", "Zipf loads over RocksDB with and without the entry cache");
  bench_cache->add_flag("--json", json, "Print one flat JSON object");
  bench_cache->add_option("--entities", cache_options.entities, "Entities in the store")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_cache->add_option("--clients", cache_options.clients, "Concurrent clients")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  bench_cache->add_option("--seconds", cache_options.seconds, "Seconds per measured run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_cache->callback([&] { PrintFigures(shardkit::bench::RunCacheBench(cache_options), json); });

  shardkit::bench::CqrsBenchOptions cqrs_options;
  auto* bench_cqrs = bench->add_subcommand("cqrs", "Command ack throughput and projection lag");
  bench_cqrs->add_flag("--json", json, "Print one flat JSON object");
  bench_cqrs->add_option("--clients", cqrs_options.clients, "Concurrent clients")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  bench_cqrs->add_option("--rate", cqrs_options.lag_rate, "Commands per second while measuring lag")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_cqrs->callback([&] { PrintFigures(shardkit::bench::RunCqrsBench(cqrs_options), json); });

  microblog::DemoOptions demo_options;
  bool routing_walkthrough = false;
  auto* demo = app.add_subcommand("demo",
                                  "The microblog of *The Tao of Microservices*: one `shardkit "
                                  "serve` process per service, grown by adding processes "
                                  "and reloading routes, under load (docs/microblog.md)");
  demo->add_flag("--quick", demo_options.quick, "A few seconds per step (for CI)");
  demo->add_flag("--keep-running", demo_options.keep_running,
                 "Leave the nodes up until ctrl-C and print commands to try");
  demo->add_option("--dir", demo_options.dir,
                   "Directory for configs, data and logs (default: a new temp dir)");
  demo->add_flag("--routing", routing_walkthrough,
                 "Instead: a walk through pattern routing on an in-process bus");
  demo->callback([&] {
    exit_code = routing_walkthrough ? RunRouterDemo() : microblog::RunDemo(demo_options);
  });

  shardkit::cli::AddNodeCommands(app, exit_code);
  shardkit::cli::AddMigrateCommand(app, exit_code);

  shardkit::services::RegisterDataServices();
  // The example's service types (microblog.*), so `shardkit serve` can host the demo's nodes.
  microblog::RegisterMicroblogServices();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "shardkit: " << e.what() << std::endl;
    return 2;
  }
  return exit_code;
}
