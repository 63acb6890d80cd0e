#include "suggest.h"

#include "commands.h"
#include "shardkit/message/closest.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace shardkit::cli {

std::optional<std::string> Closest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const auto& c : candidates) {
    // A prefix ("stat" of "status") is a typo of it whatever the length difference.
    size_t d = c.starts_with(word) && !word.empty() ? 1 : EditDistance(word, c);
    if (!best || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  // More than a third of the word changed is no longer a typo.
  if (!best || best_distance > std::max<size_t>(1, word.size() / 3)) return std::nullopt;
  return best;
}

std::optional<std::string> UnknownCommand(const CLI::App& app, int argc, const char* const* argv) {
  const CLI::App* current = &app;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word.starts_with("-")) return std::nullopt;  // options: CLI11 checks them
    std::vector<std::string> names;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : current->get_subcommands([](const CLI::App*) { return true; })) {
      names.push_back(sub->get_name());
      if (sub->get_name() == word) next = sub;
    }
    if (next == nullptr) {
      // A word where a command is required; elsewhere it is an argument of the command.
      if (current->get_require_subcommand_min() == 0) return std::nullopt;
      std::string unknown = path.empty() ? std::string(word) : path + " " + std::string(word);
      std::string prefix = path.empty() ? "" : path + " ";
      if (word == "help") {
        return fmt::format("unknown command '{}'; for help run '{} {}--help'", unknown,
                           ProgramName(), prefix);
      }
      if (auto best = Closest(word, names)) {
        return fmt::format("unknown command '{}'; did you mean '{}{}'?", unknown, prefix, *best);
      }
      return fmt::format("unknown command '{}'; the commands are: {}", unknown,
                         fmt::join(names, ", "));
    }
    path = path.empty() ? next->get_name() : path + " " + next->get_name();
    current = next;
  }
  return std::nullopt;
}

}  // namespace shardkit::cli
