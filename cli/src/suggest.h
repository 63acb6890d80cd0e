// Mistyped commands answered with the word and the closest command, before CLI11 parses (which
// would only say "A subcommand is required").
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardkit::cli {

// The candidate closest to `word`, when it is close enough to be a likely typo.
std::optional<std::string> Closest(std::string_view word,
                                   const std::vector<std::string>& candidates);

// The error line for argv naming a command `app` does not have, at any depth ("unknown command
// 'migrate stat'; did you mean 'migrate status'?"); nullopt when the commands in argv exist (or a
// command takes the word as an argument).
std::optional<std::string> UnknownCommand(const CLI::App& app, int argc, const char* const* argv);

}  // namespace shardkit::cli
