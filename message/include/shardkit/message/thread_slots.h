// Per-thread slots, for what every thread writes on a hot path (a counter per request, a
// reference count per message): kept once per thread, each on cache lines of its own, so that two
// threads writing at once do not pass one line between their cores on every write. Threads are
// numbered as they first ask; past kThreadSlots threads, two share a slot, so what a slot holds
// must stay safe to write from two threads (atomics).
//
// Thread-safety: ThreadSlot and the methods of StripedCounters and SnapshotSlots are safe from
// any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

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

// An immutable snapshot (a routing table, a shard map) that every thread reads on every message
// and that rarely changes. Taken from one std::atomic<shared_ptr>, a read writes a lock word and
// a reference count shared by every reader: two cache lines passed from core to core on each
// message. Here each slot holds the snapshot under a reference count of its own, on a line of its
// own, and a thread reads the slot of its index. Publish is for one writer at a time (the
// caller's lock); once it returns, every slot holds the new snapshot.
template <typename T>
class SnapshotSlots {
 public:
  explicit SnapshotSlots(std::shared_ptr<const T> initial) { Publish(initial); }

  std::shared_ptr<const T> Load() const {
    return slots_[ThreadSlot()].value.load(std::memory_order_acquire);
  }
  void Publish(const std::shared_ptr<const T>& value) {
    for (Slot& slot : slots_) {
      auto holder = std::make_shared<Holder>(Holder{value});
      slot.value.store(std::shared_ptr<const T>(holder, value.get()), std::memory_order_release);
    }
  }

 private:
  struct alignas(kCacheLine) Slot {
    std::atomic<std::shared_ptr<const T>> value;
  };
  // A slot's own owner of the snapshot: over-aligned, so that no two slots' counts share a line.
  struct alignas(kCacheLine) Holder {
    std::shared_ptr<const T> value;
  };
  std::array<Slot, kThreadSlots> slots_;
};

}  // namespace shardkit
