// `shardkit`: the one binary. Subcommands: serve, act, explain, routes, stats, reload (commands.h),
// migrate (migrate_command.h), bench (bench_commands.h), demo, --version. Exit codes: 0 ok, 1 error
// reply, 2 usage or connection error.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "bench_commands.h"
#include "commands.h"
#include "microblog/demo.h"
#include "microblog/services.h"
#include "migrate_command.h"
#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"
#include "shardkit/services/data_services.h"

namespace {

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

int main(int argc, char** argv) {
  CLI::App app{"shardkit: sharded, message-driven storage"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "shardkit 0.1.0");
  int exit_code = 0;

  shardkit::cli::AddBenchCommands(app);

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
