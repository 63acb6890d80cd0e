// The `shardkit` subcommands that run or talk to nodes: serve, act, routes, stats, explain,
// reload. main.cc registers them next to bench and demo.
//
// Exit codes (every subcommand): 0 ok, 1 the node answered with an error, 2 usage error or the
// node could not be reached (`unavailable`); failures print one line on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace shardkit::cli {

// Adds serve, act, routes, stats, explain and reload to `app`. When one of them is parsed, its
// callback runs it and stores its exit code in `exit_code` (which must outlive app.parse).
void AddNodeCommands(CLI::App& app, int& exit_code);

// The name failure lines start with: "shardkit", or a node binary's own (MainOptions::name).
// The help of every --to naming a node, one text everywhere.
inline constexpr const char* kToHelp =
    "The node: tcp:// or tls://host:port, http:// or https://host:port, or "
    "nats://[user:password@]host:port";

// A number > 0, refused in words ("0 is not a number greater than 0"): CLI11's PositiveNumber
// prints its bounds as doubles (a 300-digit maximum).
CLI::Validator Positive();

void SetProgramName(std::string name);
const std::string& ProgramName();

}  // namespace shardkit::cli
