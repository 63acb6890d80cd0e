#include "shardkit/bench/allocations.h"

#include <atomic>

namespace shardkit::bench {
namespace {

// One counter per thread, each on its own cache line: a count shared by every thread would
// bounce its line between the cores on every allocation and slow the multi-threaded benchmarks
// it does not measure. A slot written by one thread only needs no atomic read-modify-write (a
// locked instruction on every allocation cost about 2% of a CQRS run's cycles): a relaxed load
// and store suffice, and a reader sums them. Threads beyond the first 63 share the last slot,
// which they increment atomically.
struct alignas(64) Slot {
  std::atomic<uint64_t> count{0};
};
constexpr unsigned kSlots = 64;
constexpr unsigned kShared = kSlots - 1;
Slot slots[kSlots];
std::atomic<unsigned> next_slot{0};
thread_local unsigned my_slot = kSlots;  // constant-initialised: safe inside operator new
std::atomic<bool> counted{false};

}  // namespace

void CountAllocation() noexcept {
  if (my_slot == kSlots) {
    unsigned n = next_slot.fetch_add(1, std::memory_order_relaxed);
    my_slot = n < kShared ? n : kShared;
  }
  std::atomic<uint64_t>& count = slots[my_slot].count;
  if (my_slot != kShared) {
    count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    count.fetch_add(1, std::memory_order_relaxed);
  }
}
void EnableAllocationCounting() noexcept { counted.store(true, std::memory_order_relaxed); }
bool AllocationsCounted() noexcept { return counted.load(std::memory_order_relaxed); }
uint64_t Allocations() noexcept {
  uint64_t total = 0;
  for (const Slot& slot : slots) total += slot.count.load(std::memory_order_relaxed);
  return total;
}

}  // namespace shardkit::bench
