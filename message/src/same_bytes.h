// Equality and copies of short byte runs without a memcmp/memcpy call: routing compares and
// copies property names and values of a few bytes each, several per message, where the call
// costs more than the work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace shardkit::internal {

inline bool SameBytes(const char* a, const char* b, size_t n) {
  // Two overlapping loads cover every length from 4 to 16 (fixed-size memcpy compiles to a load).
  auto same = [&](auto word, size_t at) {
    decltype(word) x, y;
    std::memcpy(&x, a + at, sizeof x);
    std::memcpy(&y, b + at, sizeof y);
    return x == y;
  };
  if (n > 16) return std::memcmp(a, b, n) == 0;
  if (n >= 8) return same(uint64_t{}, 0) && same(uint64_t{}, n - 8);
  if (n >= 4) return same(uint32_t{}, 0) && same(uint32_t{}, n - 4);
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// memcpy of a few bytes without the call, for the same reason.
inline void CopyBytes(char* to, const char* from, size_t n) {
  auto copy = [&](auto word, size_t at) {
    std::memcpy(&word, from + at, sizeof word);
    std::memcpy(to + at, &word, sizeof word);
  };
  if (n > 16) {
    std::memcpy(to, from, n);
  } else if (n >= 8) {
    copy(uint64_t{}, 0);
    copy(uint64_t{}, n - 8);
  } else if (n >= 4) {
    copy(uint32_t{}, 0);
    copy(uint32_t{}, n - 4);
  } else {
    for (size_t i = 0; i < n; ++i) to[i] = from[i];
  }
}

}  // namespace shardkit::internal
