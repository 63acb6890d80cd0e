// The `shardkit` command line as a library: a node binary of your own runs the same commands
// (serve, act, explain, routes, stats, reload, migrate, bench) with your service types registered.
//
//   int main(int argc, char** argv) {
//     shardkit::services::RegisterServiceType("likes", likes::MakeLikesService);  // yours first
//     return shardkit::cli::Main(argc, argv, {.name = "likes-node"});
//   }
//
// docs/extending.md walks through a whole service type, its node binary and its tests.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace shardkit::cli {

struct MainOptions {
  std::string name = "shardkit";  // shown in --help, --version and errors
  std::string version = "0.1.0";
  // Adds commands of your own (CLI11, <CLI/CLI.hpp>) before the command line is parsed; a
  // command's callback stores its exit code in `exit_code`, which outlives the parse.
  std::function<void(CLI::App& app, int& exit_code)> add_commands;
};

// Registers shardkit's own service types (store, shard-map, shard-router, cache, migrator, cqrs),
// parses argv and runs the command it names. Returns the process's exit code: 0 ok, 1 the node
// answered with an error, 2 a usage error or a node that could not be reached.
int Main(int argc, char** argv, const MainOptions& options = {});

}  // namespace shardkit::cli
