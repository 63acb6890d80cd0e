#include "shardkit/cli/main.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

#include "bench_commands.h"
#include "commands.h"
#include "migrate_command.h"
#include "shardkit/services/data_services.h"
#include "suggest.h"

namespace shardkit::cli {

int Main(int argc, char** argv, const MainOptions& options) {
  CLI::App app{options.name + ": sharded, message-driven storage"};
  app.require_subcommand(1);
  app.set_version_flag("--version", options.name + " " + options.version);
  int exit_code = 0;
  SetProgramName(options.name);
  // Logs go to standard error: standard output carries what a command answers (`--json` figures,
  // replies, `listening` lines), so it stays machine-readable whatever a node logs meanwhile.
  spdlog::set_default_logger(spdlog::stderr_color_mt(options.name));
  AddNodeCommands(app, exit_code);
  AddMigrateCommand(app, exit_code);
  AddBenchCommands(app);
  if (options.add_commands) options.add_commands(app, exit_code);

  services::RegisterDataServices();
  if (auto unknown = UnknownCommand(app, argc, argv)) {
    std::cerr << options.name << ": " << *unknown << "\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << options.name << ": " << e.what() << std::endl;
    return 2;
  }
  return exit_code;
}

}  // namespace shardkit::cli
