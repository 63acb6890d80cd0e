// Equality and copies of short byte runs without a memcmp or memcpy call: routing compares
// property names and values of a few bytes each, several per message, and building a message
// copies as many, where the call costs more than the work.
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
  // Bytes 0, n/2 and n-1 are every byte of a run of 1 to 3, without a loop that mispredicts
  // where names and values of such lengths alternate ("k5", "k55").
  return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
}

// Copies `n` bytes from `from` to `to` (not overlapping), as SameBytes compares them.
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
  } else if (n != 0) {
    to[0] = from[0];
    to[n / 2] = from[n / 2];
    to[n - 1] = from[n - 1];
  }
}

}  // namespace shardkit::internal
