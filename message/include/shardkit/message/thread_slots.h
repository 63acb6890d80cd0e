// Per-thread slots, for what every thread writes on a hot path (a counter per request, a
// reference count per message): kept once per thread, each on cache lines of its own, so that two
// threads writing at once do not pass one line between their cores on every write. Threads are
// numbered as they first ask; past kThreadSlots threads, two share a slot, so what a slot holds
// must stay safe to write from two threads (atomics).
//
// Thread-safety: ThreadSlot and StripedCounters' methods are safe from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shardkit/message/cache_lines.h"

namespace shardkit {

inline constexpr size_t kThreadSlots = 16;

// The calling thread's slot, 0 .. kThreadSlots - 1.
inline size_t ThreadSlot() {
  static std::atomic<size_t> next{0};
  thread_local const size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kThreadSlots;
  return mine;
}

// N counters, each added to in the calling thread's slot and summed over the slots when read.
// A counter may be added to on one thread and taken from on another (an in-flight count): its
// slots may go below zero, their sum is exact.
template <size_t N>
class StripedCounters {
 public:
  void Add(size_t counter, int64_t n = 1) {
    slots_[ThreadSlot()].values[counter].fetch_add(n, std::memory_order_relaxed);
  }
  int64_t Sum(size_t counter) const {
    int64_t total = 0;
    for (const Slot& slot : slots_) total += slot.values[counter].load(std::memory_order_relaxed);
    return total;
  }
  std::array<int64_t, N> Sums() const {
    std::array<int64_t, N> totals{};
    for (const Slot& slot : slots_)
      for (size_t i = 0; i < N; ++i) totals[i] += slot.values[i].load(std::memory_order_relaxed);
    return totals;
  }

 private:
  struct alignas(kCacheLine) Slot {
    std::array<std::atomic<int64_t>, N> values{};
  };
  std::array<Slot, kThreadSlots> slots_;
};

}  // namespace shardkit
