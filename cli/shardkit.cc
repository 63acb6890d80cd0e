// The `shardkit` executable: the command line (shardkit/cli/main.h) plus `demo`, which runs the
// microblog case study (examples/microblog) and a walk through routing.
#include <CLI/CLI.hpp>

#include "microblog/demo.h"
#include "microblog/services.h"
#include "shardkit/cli/main.h"
#include "src/router_demo.h"

int main(int argc, char** argv) {
  microblog::DemoOptions demo_options;
  bool routing_walkthrough = false;
  shardkit::cli::MainOptions options;
  options.add_commands = [&](CLI::App& app, int& exit_code) {
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
      exit_code = routing_walkthrough ? shardkit::cli::RunRouterDemo()
                                      : microblog::RunDemo(demo_options);
    });
  };
  // The example's service types (microblog.*), so `shardkit serve` can host the demo's nodes.
  microblog::RegisterMicroblogServices();
  return shardkit::cli::Main(argc, argv, options);
}
