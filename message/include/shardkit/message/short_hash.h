// ShortHash: a hash of a few bytes (routing values, cache keys: mostly under 32), inline and
// without the call XXH3's dispatch on the length costs: one 64x64->128 multiply per 8 bytes (as
// in wyhash), so that the low bits an open-addressed table uses depend on every byte, and so do
// the high ones. Not for data an attacker picks to collide (no secret seed); not stable across
// versions (never stored).
//
// Thread-safety: stateless.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace shardkit {

// Chains: `seed` is the hash of what came before (0 for none).
[[gnu::always_inline]] inline uint64_t ShortHash(std::string_view bytes, uint64_t seed = 0) {
  constexpr uint64_t kMul = 0xa0761d6478bd642full, kXor = 0xe7037ed1a0b428dbull;
  auto mix = [](uint64_t a, uint64_t b) {
    unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
    return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
  };
  auto load = [](const char* p, auto word) {
    std::memcpy(&word, p, sizeof word);
    return static_cast<uint64_t>(word);
  };
  const char* p = bytes.data();
  const size_t n = bytes.size();
  uint64_t h = seed ^ (n * kMul);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) h = mix(h ^ load(p + i, uint64_t{}) ^ kXor, kMul);
  if (i < n) {
    uint64_t tail;
    if (n >= 8) {
      tail = load(p + n - 8, uint64_t{});  // overlaps the last word: n is in the hash already
    } else if (n >= 4) {
      tail = load(p, uint32_t{}) << 32 | load(p + n - 4, uint32_t{});
    } else {
      tail = static_cast<uint64_t>(static_cast<unsigned char>(p[0])) << 16 |
             static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
             static_cast<unsigned char>(p[n - 1]);
    }
    h = mix(h ^ tail ^ kXor, kMul);
  }
  return h;  // the length, seeded in above, sets apart the runs that the loads overlap
}

}  // namespace shardkit
