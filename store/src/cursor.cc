#include "cursor.h"

#include <xxhash.h>

#include "key_codec.h"
#include "validation.h"

namespace shardkit::store::internal {
namespace {

constexpr char kVersion = 'c';
constexpr char kHex[] = "0123456789abcdef";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

// Binary form, then hex: version | fingerprint(8) | has_sort(1) [sort value] | ksid(8) | id |
// checksum(8) = XXH64 of everything before it.
std::string EncodeCursor(uint64_t query_fingerprint, const CursorPosition& position) {
  std::string raw(1, kVersion);
  AppendBigEndian64(raw, query_fingerprint);
  raw.push_back(position.sort_value ? 1 : 0);
  if (position.sort_value) position.sort_value->Encode(raw);
  AppendBigEndian64(raw, position.ksid);
  raw.append(position.id);
  AppendBigEndian64(raw, XXH64(raw.data(), raw.size(), 0));
  std::string hex;
  hex.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return hex;
}

Result<CursorPosition> DecodeCursor(std::string_view cursor, uint64_t query_fingerprint) {
  const Status malformed =
      Status::InvalidField("cursor", "malformed (pass back a next_cursor unchanged)");
  if (cursor.size() % 2 != 0) return malformed;
  std::string raw;
  raw.reserve(cursor.size() / 2);
  for (size_t i = 0; i < cursor.size(); i += 2) {
    int hi = HexDigit(cursor[i]), lo = HexDigit(cursor[i + 1]);
    if (hi < 0 || lo < 0) return malformed;
    raw.push_back(static_cast<char>(hi << 4 | lo));
  }
  // version + fingerprint + has_sort + ksid + checksum
  if (raw.size() < 1 + 8 + 1 + 8 + 8 || raw[0] != kVersion) return malformed;
  std::string_view body(raw.data(), raw.size() - 8);
  if (XXH64(body.data(), body.size(), 0) !=
      ReadBigEndian64(std::string_view(raw).substr(body.size()))) {
    return malformed;
  }
  body.remove_prefix(1);
  if (ReadBigEndian64(body) != query_fingerprint) {
    return Status::InvalidField("cursor",
                                "belongs to another query (kind, filters or sort changed)");
  }
  body.remove_prefix(8);
  CursorPosition position;
  const char has_sort = body[0];
  body.remove_prefix(1);
  if (has_sort == 1) {
    position.sort_value = SortValue::Decode(body);
    if (!position.sort_value) return malformed;
  } else if (has_sort != 0) {
    return malformed;
  }
  if (body.size() < 8) return malformed;
  position.ksid = ReadBigEndian64(body);
  position.id.assign(body.substr(8));
  return position;
}

}  // namespace shardkit::store::internal
