// `shardkit bench …`: every benchmark, each printing its figures as a table or (--json) one flat
// JSON object. docs/performance.md has what each measures and the figures of record.
#pragma once

#include <CLI/CLI.hpp>

namespace shardkit::cli {

// Adds `bench` and its subcommands to `app`. Their options live as long as the process.
void AddBenchCommands(CLI::App& app);

}  // namespace shardkit::cli
