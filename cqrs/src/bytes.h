// Private helpers: big-endian integers and length-prefixed strings for RocksDB keys and values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shardkit::cqrs::internal {

inline void PutBe64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
inline void PutBe32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
// Reads a big-endian integer of `n` bytes from the front of `in` and consumes it.
inline std::optional<uint64_t> TakeBe(std::string_view& in, int n) {
  if (in.size() < static_cast<size_t>(n)) return std::nullopt;
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(n);
  return v;
}
inline void PutString(std::string& out, std::string_view s) {
  PutBe32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}
inline std::optional<std::string_view> TakeString(std::string_view& in) {
  auto n = TakeBe(in, 4);
  if (!n || in.size() < *n) return std::nullopt;
  std::string_view s = in.substr(0, *n);
  in.remove_prefix(*n);
  return s;
}
// prefix + 8-byte big-endian number: keys that sort by number.
inline std::string NumberKey(char prefix, uint64_t v) {
  std::string key(1, prefix);
  PutBe64(key, v);
  return key;
}

}  // namespace shardkit::cqrs::internal
