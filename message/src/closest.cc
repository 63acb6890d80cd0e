#include "shardkit/message/closest.h"

#include <fmt/format.h>

#include <algorithm>

namespace shardkit {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

namespace {

// Edits from the message to a term it does not match: to its value when the property is there,
// else from the nearest property name to the term's name.
size_t TermDistance(const Message& message, const Pattern::Term& term, const Value* value) {
  if (value != nullptr) return EditDistance(value->text, term.value);
  size_t best = term.name.size();
  for (const auto& property : message.properties()) {
    best = std::min(best, EditDistance(property.name, term.name));
  }
  return best;
}

}  // namespace

std::vector<NearPattern> ClosestPatterns(const std::vector<Pattern>& patterns,
                                         const Message& message, size_t max) {
  std::vector<NearPattern> scored;
  for (const auto& pattern : patterns) {
    const auto& terms = pattern.terms();
    if (terms.empty()) continue;
    NearPattern near{pattern.ToString(), 0, terms.size(), {}};
    for (const auto& term : terms) {
      const Value* v = message.Find(term.name);
      bool ok = v != nullptr && v->is_routable() &&
                (term.glob ? GlobMatches(term.value, v->text) : term.value == v->text);
      if (ok) {
        ++near.matching;
        continue;
      }
      near.distance += TermDistance(message, term, v);
      if (near.why.empty()) {
        near.why = v == nullptr ? fmt::format("no property '{}'", term.name)
                                : fmt::format("{} is '{}', pattern wants '{}'", term.name, v->text,
                                              term.value);
      }
    }
    scored.push_back(std::move(near));
  }
  std::stable_sort(scored.begin(), scored.end(), [](const NearPattern& a, const NearPattern& b) {
    if (a.matching != b.matching) return a.matching > b.matching;
    if (a.distance != b.distance) return a.distance < b.distance;
    return a.terms < b.terms;
  });
  if (scored.size() > max) scored.resize(max);
  return scored;
}

std::string FormatNearPatterns(const std::vector<NearPattern>& near, std::string_view indent) {
  std::string out;
  for (const auto& n : near) {
    if (!out.empty()) out += '\n';
    out += fmt::format("{}{:<32} {} of {} terms match{}", indent, n.pattern, n.matching, n.terms,
                       n.why.empty() ? "" : "; " + n.why);
  }
  return out;
}

}  // namespace shardkit
