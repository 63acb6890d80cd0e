// shardkit-microblog: the `shardkit` command line with the microblog's service types
// (microblog.*) registered, plus `demo`, which runs the case study with every service in a
// `shardkit-microblog serve` process of its own. `shardkit demo` runs this binary.
#include <CLI/CLI.hpp>

#include <cstdio>

#include <microblog/demo.h>
#include <microblog/services.h>
#include <shardkit/cli/main.h>

int main(int argc, char** argv) {
  microblog::DemoOptions demo;
  shardkit::cli::MainOptions options;
  options.name = "shardkit-microblog";
  options.add_commands = [&](CLI::App& app, int& exit_code) {
    auto* command = app.add_subcommand("demo",
                                       "The microblog of *The Tao of Microservices*: one process "
                                       "per service, grown by adding processes and reloading "
                                       "routes, under load (docs/microblog.md)");
    command->add_flag("--quick", demo.quick, "A few seconds per step (for CI)");
    command->add_flag("--keep-running", demo.keep_running,
                      "Leave the nodes up until ctrl-C and print commands to try");
    command->add_option("--dir", demo.dir,
                        "Directory for configs, data and logs (default: a new temp dir)");
    command->callback([&] { exit_code = microblog::RunDemo(demo); });
  };
  microblog::RegisterMicroblogServices();
  return shardkit::cli::Main(argc, argv, options);
}
