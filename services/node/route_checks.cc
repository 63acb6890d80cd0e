#include "route_checks.h"

#include <map>
#include <optional>

#include <fmt/format.h>

namespace shardkit::services {
namespace {

// A mark that a forwarder adds to the messages it passes on; an empty value: any value.
struct Mark {
  std::string_view name;
  std::string_view value;
};
constexpr Mark kMarks[] = {{"cache", "true"}, {"shard", ""}, {"cqrs", "apply"}};

bool IsMark(const Pattern::Term& term) {
  for (const Mark& mark : kMarks) {
    if (!term.glob && term.name == mark.name && (mark.value.empty() || term.value == mark.value))
      return true;
  }
  return false;
}

bool HasTerm(const Pattern& pattern, std::string_view name) {
  for (const Pattern::Term& term : pattern.terms()) {
    if (term.name == name) return true;
  }
  return false;
}

// Whether `other` could take what a forwarder sends to `marked`: it carries no mark of its own
// (a forwarded message carries one) and names a property `marked` names besides `mark`.
bool Competes(const Pattern& other, const Pattern& marked, std::string_view mark) {
  bool shares = false;
  for (const Pattern::Term& term : other.terms()) {
    if (IsMark(term) || term.name == mark) return false;
    shares |= HasTerm(marked, term.name);
  }
  return shares;
}

// A value a glob matches: its literal characters, `?` as one character.
std::string Instance(std::string_view glob) {
  std::string out;
  for (char c : glob) {
    if (c == '?') out += 'x';
    if (c != '*' && c != '?') out += c;
  }
  return out;
}

// A message that both patterns match, or nullopt when their values exclude each other.
std::optional<Message> MatchedByBoth(const Pattern& a, const Pattern& b) {
  std::map<std::string, std::string> values;
  for (const Pattern* pattern : {&a, &b}) {
    for (const Pattern::Term& term : pattern->terms()) {
      if (term.glob) continue;
      auto [it, added] = values.emplace(term.name, term.value);
      if (!added && it->second != term.value) return std::nullopt;
    }
  }
  for (const Pattern* pattern : {&a, &b}) {
    for (const Pattern::Term& term : pattern->terms()) {
      if (term.glob) values.emplace(term.name, Instance(term.value));
    }
  }
  Message message;
  for (const auto& [name, value] : values) message.SetString(name, value);
  if (!a.Matches(message) || !b.Matches(message)) return std::nullopt;
  return message;
}

}  // namespace

std::vector<std::string> ForwardingLoopWarnings(const Router& router) {
  std::vector<std::string> warnings;
  const auto routes = router.List();
  for (const auto& marked : routes) {
    for (const Pattern::Term& mark : marked->pattern.terms()) {
      if (!IsMark(mark)) continue;
      for (const auto& other : routes) {
        if (other == marked || other->description == marked->description ||
            !Competes(other->pattern, marked->pattern, mark.name))
          continue;
        auto message = MatchedByBoth(marked->pattern, other->pattern);
        if (!message || router.Find(*message) != other) continue;
        warnings.push_back(fmt::format(
            "route loop: a message forwarded with {}:{} such as '{}' goes to '{}' ({}) instead of "
            "'{}' ({}); make '{}' less specific or give it a term the forwarded messages lack",
            mark.name, mark.value, message->RoutingString(), other->pattern.ToString(),
            other->description, marked->pattern.ToString(), marked->description,
            other->pattern.ToString()));
      }
    }
  }
  return warnings;
}

}  // namespace shardkit::services
