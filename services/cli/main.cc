// `shardkit`: the one binary. Subcommands: bench, demo, version (serve/act/migrate come with their
// issues). Exit codes: 0 ok, 1 error reply, 2 usage or connection error.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "shardkit/bench/bench.h"
#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"

namespace {

using shardkit::bench::Figures;

void PrintFigures(const Figures& figures, bool json) {
  if (json) {
    std::cout << shardkit::bench::FiguresToJson(figures) << std::endl;
  } else {
    std::cout << shardkit::bench::FiguresToTable(figures);
  }
}

// Until the microblog demo exists: the seed's first moves, on the in-process bus.
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
    fmt::print("  {}\n    route: {}\n    reply: {}\n", json, explanation.summary, ToJson(ToWire(std::move(reply))));
  };

  say("A store service answers store:*,kind:entry");
  (void)bus.Add("store:*,kind:entry", MakeSyncHandler([](Message m, const Context&) -> Result<Message> {
                  Message reply;
                  reply.SetString("served_by", "entry-store").SetString("op", *m.GetString("store"));
                  return reply;
                }), "entry-store");
  send(R"({"store":"load","kind":"entry","id":"1"})");
  send(R"({"store":"load","kind":"user","id":"1"})");

  say("Additivity: a cache overrides the pattern and still reaches the store as its prior");
  (void)bus.Override("store:*,kind:entry", MakeHandler([](Message m, const Context& ctx, ReplyFn reply) {
                       ctx.Prior(std::move(m), [reply](Result<Message> r) {
                         if (r.ok()) r->SetBool("via_cache", true);
                         reply(std::move(r));
                       });
                     }), "entry-cache");
  send(R"({"store":"load","kind":"entry","id":"1"})");

  say("Most specific wins: a dedicated handler for loads of entry 42");
  (void)bus.Add("store:load,kind:entry,id:42", MakeSyncHandler([](Message, const Context&) -> Result<Message> {
                  return Message().SetString("served_by", "hot-entry");
                }), "hot-entry");
  send(R"({"store":"load","kind":"entry","id":42})");

  say("Sidewinder: info:entry is published to every observer");
  for (const char* name : {"index", "timeline"}) {
    (void)bus.Observe("info:entry", MakeSyncHandler([name](Message m, const Context&) -> Result<Message> {
                        fmt::print("  {} observed {}\n", name, ToJson(m));
                        return m;
                      }));
  }
  bus.Publish(std::move(ParseMessage(R"({"info":"entry","ent":{"text":"hello"}})")).value());

  say("Bad input is refused with a clear error");
  send(R"({"store":"load",)");
  fmt::print("\nThe microblog demo of the seed replaces this walk-through when it lands.\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shardkit: sharded, message-driven storage"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "shardkit 0.1.0");

  shardkit::bench::Options bench_options;
  bool json = false;
  auto* bench = app.add_subcommand("bench", "Run a benchmark and print its figures");
  bench->require_subcommand(1);
  auto* bench_router = bench->add_subcommand("router", "Pattern matching and in-process act");
  auto* bench_codec = bench->add_subcommand("codec", "JSON parse, serialize and parse-route-reply");
  for (auto* sub : {bench_router, bench_codec}) {
    sub->add_flag("--json", json, "Print one flat JSON object");
    sub->add_option("--repetitions", bench_options.repetitions, "Runs per figure (the median is reported)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    sub->add_option("--min-time", bench_options.min_time_s, "Seconds per run")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
  }

  auto* demo = app.add_subcommand("demo", "Walk through shardkit's routing on an in-process bus");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (bench_router->parsed()) PrintFigures(shardkit::bench::RunRouterBench(bench_options), json);
  if (bench_codec->parsed()) PrintFigures(shardkit::bench::RunCodecBench(bench_options), json);
  if (demo->parsed()) return RunRouterDemo();
  return 0;
}
