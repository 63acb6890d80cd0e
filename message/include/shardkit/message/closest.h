// The patterns closest to a message no pattern matches: most matching terms first, each with the
// first term that does not match. What a strict mock prints for an unexpected message and what
// `shardkit act` prints for a `no handler` reply, computed one way.
//
// Thread-safety: a free function without shared state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shardkit/message/message.h"
#include "shardkit/message/pattern.h"

namespace shardkit {

struct NearPattern {
  std::string pattern;  // Pattern::ToString()
  size_t matching = 0;  // terms the message matches
  size_t terms = 0;     // terms of the pattern
  std::string why;      // the first term that does not match; empty when all do
  size_t distance = 0;  // edits from the message to the unmatched terms (names, else values)
};

// Levenshtein distance (insertions, deletions, substitutions): how far a typo is from a word.
size_t EditDistance(std::string_view a, std::string_view b);

// At most `max` of `patterns` (catch-alls without terms left out), closest first: most matching
// terms, then fewest edits (`like:add` is nearer `likes:*` than `sys:stats`), then fewest terms.
std::vector<NearPattern> ClosestPatterns(const std::vector<Pattern>& patterns,
                                         const Message& message, size_t max);

// "    likes:*   0 of 1 terms match; no property 'likes'", one line per pattern.
std::string FormatNearPatterns(const std::vector<NearPattern>& near, std::string_view indent);

}  // namespace shardkit
