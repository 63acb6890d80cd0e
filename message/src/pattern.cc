#include "shardkit/message/pattern.h"

#include <algorithm>

#include <fmt/format.h>

#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"

namespace shardkit {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsBare(char c) { return !IsSpace(c) && c != ',' && c != ':' && c != '"' && c != '\''; }
bool IsGlobText(std::string_view s) { return s.find_first_of("*?") != std::string_view::npos; }

// Whether `s` can be written bare and read back as the same literal.
bool CanWriteBare(std::string_view s, bool glob) {
  if (s.empty()) return false;
  if (!glob && IsGlobText(s)) return false;
  return std::all_of(s.begin(), s.end(), IsBare);
}

// A character for an error message: one byte of a multi-byte UTF-8 character is not text, and
// the error must stay valid JSON on the wire.
std::string Shown(char c) {
  if (static_cast<unsigned char>(c) < 0x80) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", static_cast<unsigned char>(c));
}

class PatternParser {
 public:
  explicit PatternParser(std::string_view text) : text_(text) {}

  Result<std::vector<Pattern::Term>> Parse() {
    std::vector<Pattern::Term> terms;
    SkipSpace();
    if (AtEnd()) return terms;
    while (true) {
      Pattern::Term term;
      SkipSpace();
      auto name = Token("a property name");
      if (!name.ok()) return name.status();
      term.name = std::move(name->text);
      SkipSpace();
      if (AtEnd() || text_[pos_] != ':') {
        return Error(fmt::format("expected ':' after property name '{}'", term.name));
      }
      ++pos_;
      SkipSpace();
      auto value = Token("a value after ':'");
      if (!value.ok()) return value.status();
      term.glob = !value->quoted && IsGlobText(value->text);
      term.value = std::move(value->text);
      terms.push_back(std::move(term));
      SkipSpace();
      if (AtEnd()) break;
      if (text_[pos_] != ',')
        return Error(fmt::format("expected ',' or the end, found {}", Shown(text_[pos_])));
      ++pos_;
    }
    return terms;
  }

 private:
  struct Parsed {
    std::string text;
    bool quoted = false;
  };

  bool AtEnd() const { return pos_ >= text_.size(); }
  void SkipSpace() {
    while (!AtEnd() && IsSpace(text_[pos_])) ++pos_;
  }

  Status Error(std::string problem) const {
    return Status::Invalid(fmt::format("pattern '{}': at {}: {}", text_, pos_, problem));
  }

  Result<Parsed> Token(std::string_view what) {
    if (AtEnd()) return Error(fmt::format("expected {}", what));
    char c = text_[pos_];
    if (c == '"' || c == '\'') return Quoted(c);
    size_t start = pos_;
    while (!AtEnd() && IsBare(text_[pos_])) ++pos_;
    if (pos_ == start) return Error(fmt::format("expected {}, found {}", what, Shown(c)));
    return Parsed{std::string(text_.substr(start, pos_ - start)), false};
  }

  // A quoted token is decoded as a JSON string; single quotes are rewritten to double quotes.
  Result<Parsed> Quoted(char quote) {
    size_t start = pos_++;
    std::string json = "\"";
    while (true) {
      if (AtEnd()) {
        pos_ = start;
        return Error("unterminated quoted text");
      }
      char c = text_[pos_++];
      if (c == quote) break;
      if (c == '\\') {
        if (AtEnd()) continue;
        char next = text_[pos_++];
        if (next == '\'') {
          json += '\'';
        } else {
          json += '\\';
          json += next;
        }
        continue;
      }
      if (c == '"') {
        json += "\\\"";
        continue;
      }
      json += c;
    }
    json += '"';
    auto doc = ParseJson(json, "quoted text");
    if (!doc.ok() || !doc->IsString()) {
      size_t end = pos_;
      pos_ = start;
      (void)end;
      return Error("bad escape in quoted text");
    }
    return Parsed{std::string(doc->GetString(), doc->GetStringLength()), true};
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

bool GlobMatches(std::string_view glob, std::string_view text) {
  // Iterative wildcard match with single backtrack point: O(|glob| * |text|) worst case.
  size_t g = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == text[t])) {
      ++g;
      ++t;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = t;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

Result<Pattern> Pattern::Parse(std::string_view text) {
  // Patterns are UTF-8 like the messages they match; a bare token would otherwise keep any bytes,
  // and ToString() could not quote them. The error leaves the bytes out: it must stay valid JSON.
  if (!IsUtf8(text)) return Status::Invalid("a pattern must be text: this one is not valid UTF-8");
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    auto message = ParseMessage(text);
    if (!message.ok()) {
      return Status::Invalid(fmt::format("pattern '{}': {}", text, message.status().message()));
    }
    std::vector<Term> terms;
    for (const Property& p : message->properties()) {
      if (!p.value.is_routable()) {
        return Status::Invalid(fmt::format(
            "pattern '{}': property '{}' must be a string, number or bool", text, p.name));
      }
      terms.push_back(Term{std::string(p.name), std::string(p.value.text), false});
    }
    return FromTerms(std::move(terms), text);
  }
  auto terms = PatternParser(text).Parse();
  if (!terms.ok()) return terms.status();
  return FromTerms(std::move(terms).value(), text);
}

Result<Pattern> Pattern::FromTerms(std::vector<Term> terms, std::string_view text) {
  Pattern pattern;
  std::vector<const Term*> sorted;
  for (const Term& t : terms) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](const Term* a, const Term* b) { return a->name < b->name; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->name == sorted[i - 1]->name) {
      return Status::Invalid(
          fmt::format("pattern '{}': property '{}' appears twice", text, sorted[i]->name));
    }
  }
  for (const Term* t : sorted) {
    if (!pattern.key_.empty()) pattern.key_ += ',';
    pattern.key_ += t->name;
    pattern.key_ += t->glob ? ":~" : ":=";  // a glob and a literal of the same text differ
    pattern.key_ += t->value;
    if (t->glob) ++pattern.glob_count_;
  }
  pattern.terms_ = std::move(terms);
  return pattern;
}

bool Pattern::Matches(const Message& message) const {
  for (const Term& term : terms_) {
    const Value* value = message.Find(term.name);
    if (value == nullptr || !value->is_routable()) return false;
    if (term.glob ? !GlobMatches(term.value, value->text) : term.value != value->text) return false;
  }
  return true;
}

std::string Pattern::ToString() const {
  std::string out;
  for (const Term& term : terms_) {
    if (!out.empty()) out += ',';
    // A pattern that starts with '{' reads as the JSON form; a bare glob value must stay bare.
    if (CanWriteBare(term.name, false) && term.name.front() != '{') {
      out += term.name;
    } else {
      AppendJsonString(term.name, out);
    }
    out += ':';
    if (CanWriteBare(term.value, term.glob)) {
      out += term.value;
    } else {
      AppendJsonString(term.value, out);
    }
  }
  return out;
}

}  // namespace shardkit
