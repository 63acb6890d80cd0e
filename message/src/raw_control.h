// Internal to message/: what RapidJSON 1.1 (Debian 12) fails to refuse in JSON text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace shardkit::internal {

// The offset of the first byte 0x1a-0x1f in `text`, or npos. JSON allows no raw control
// character in a string (and none but tab, newline and return outside one), but RapidJSON's SSE2
// string scanner takes these six for text: it tests c <= 0x19. A text that passed such a parse
// would print as JSON that no parser reads back, so every parse looks for them first.
inline size_t FindUnscannedControl(std::string_view text) {
  // A byte, not a bool: GCC 12 vectorises an OR of bytes but compiles `bool |=` one byte at a
  // time (7 instructions a byte, a few percent of a CQRS command's parse).
  uint8_t any = 0;
  for (char c : text) any |= static_cast<uint8_t>(static_cast<uint8_t>(c) - 0x1a) < 6;
  if (!any) return std::string_view::npos;  // the loop above vectorises; this one runs rarely
  for (size_t i = 0; i < text.size(); ++i)
    if (static_cast<uint8_t>(static_cast<uint8_t>(text[i]) - 0x1a) < 6) return i;
  return std::string_view::npos;
}

// Whether `text` holds an escape `\uD...` (a surrogate, lone or paired). In text checked as UTF-8
// only such an escape can decode to bytes that are not, so the checks of decoded strings for
// them run only when it does.
inline bool HasSurrogateEscape(std::string_view text) {
  for (size_t at = text.find("\\u"); at != std::string_view::npos; at = text.find("\\u", at + 2)) {
    if (at + 2 < text.size() && (text[at + 2] == 'd' || text[at + 2] == 'D')) return true;
  }
  return false;
}

}  // namespace shardkit::internal
