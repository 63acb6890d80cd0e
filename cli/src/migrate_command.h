// `shardkit migrate …`: drives a node's migrator service (docs/migration.md) over TCP or HTTP.
#pragma once

#include <CLI/CLI.hpp>

namespace shardkit::cli {

void AddMigrateCommand(CLI::App& app, int& exit_code);

}  // namespace shardkit::cli
