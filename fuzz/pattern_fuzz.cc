// The pattern notation (`a:1,b:2`, quoted values, globs, the JSON object form). A pattern it
// accepts must print as notation that parses back to an equal pattern, and match the message
// made of its own exact terms.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <shardkit/message/pattern.h>

#include "check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  shardkit::Result<shardkit::Pattern> pattern = shardkit::Pattern::Parse(text);
  if (!pattern.ok()) return 0;
  shardkit::Result<shardkit::Pattern> again = shardkit::Pattern::Parse(pattern->ToString());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *pattern);
  FUZZ_CHECK(again->terms() == pattern->terms());
  if (pattern->glob_count() == 0) {
    shardkit::Message message;
    for (const auto& term : pattern->terms()) message.SetString(term.name, term.value);
    FUZZ_CHECK(pattern->Matches(message));
  }
  // The glob matcher on its own: the first line is the glob, the rest the text.
  const size_t newline = text.find('\n');
  if (newline != std::string_view::npos)
    (void)shardkit::GlobMatches(text.substr(0, newline), text.substr(newline + 1));
  return 0;
}
