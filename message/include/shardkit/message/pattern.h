// Pattern: the notation for which messages a handler takes, e.g. `store:list,kind:entry`.
//
// Grammar (whitespace around tokens is ignored):
//   pattern := "" | term ("," term)*          (the empty pattern matches every message)
//   term    := name ":" value
//   name    := bare | quoted
//   value   := bare | quoted
//   bare    := one or more characters other than , : " ' and whitespace
//   quoted  := "…" or '…' with JSON escapes (\" \\ \n \t \uXXXX …)
// A bare value containing * or ? is a glob: * matches any run of characters (also none), ? one
// character. A quoted value is always literal, so `name:"a*"` matches only the text a*.
// A JSON object of scalars is accepted too: {"store":"list","kind":"entry"}.
//
// Values compare as canonical text (message.h): the pattern value 1 matches the message values
// 1 and "1" (as in patrun), but not 1.0.
//
// Thread-safety: an immutable value once parsed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shardkit/message/message.h"
#include "shardkit/message/status.h"

namespace shardkit {

class Pattern {
 public:
  struct Term {
    std::string name;
    std::string value;  // canonical text; for a glob, the glob text
    bool glob = false;
    friend bool operator==(const Term&, const Term&) = default;
  };

  // Parses the notation above. Errors are `invalid` and name the position (0-based byte offset)
  // and the problem: "pattern 'kind:': at 5: expected a value after ':'".
  static Result<Pattern> Parse(std::string_view text);

  // The terms in the order written.
  const std::vector<Term>& terms() const { return terms_; }
  size_t exact_count() const { return terms_.size() - glob_count_; }
  size_t glob_count() const { return glob_count_; }

  // Whether every term is present in `message` with a matching value.
  bool Matches(const Message& message) const;

  // The notation, terms in the order written; Parse(ToString()) gives an equal pattern.
  std::string ToString() const;
  // The identity of the pattern: terms sorted by name. Two patterns that differ only in the order
  // of their terms have the same key.
  const std::string& key() const { return key_; }

  friend bool operator==(const Pattern& a, const Pattern& b) { return a.key_ == b.key_; }

 private:
  static Result<Pattern> FromTerms(std::vector<Term> terms, std::string_view text);

  std::vector<Term> terms_;
  size_t glob_count_ = 0;
  std::string key_;
};

// Whether `text` matches the glob (* any run, ? one character).
bool GlobMatches(std::string_view glob, std::string_view text);

}  // namespace shardkit
