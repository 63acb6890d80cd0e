#include "shardkit/bench/allocations.h"

#include <atomic>

namespace shardkit::bench {
namespace {

// One counter per thread (threads beyond 64 share), each on its own cache line: a count shared
// by every thread would bounce its line between the cores on every allocation and slow the
// multi-threaded benchmarks it does not measure.
struct alignas(64) Slot {
  std::atomic<uint64_t> count{0};
};
constexpr unsigned kSlots = 64;
Slot slots[kSlots];
std::atomic<unsigned> next_slot{0};
thread_local unsigned my_slot = kSlots;  // constant-initialised: safe inside operator new
std::atomic<bool> counted{false};

}  // namespace

void CountAllocation() noexcept {
  if (my_slot == kSlots) my_slot = next_slot.fetch_add(1, std::memory_order_relaxed) % kSlots;
  slots[my_slot].count.fetch_add(1, std::memory_order_relaxed);
}
void EnableAllocationCounting() noexcept { counted.store(true, std::memory_order_relaxed); }
bool AllocationsCounted() noexcept { return counted.load(std::memory_order_relaxed); }
uint64_t Allocations() noexcept {
  uint64_t total = 0;
  for (const Slot& slot : slots) total += slot.count.load(std::memory_order_relaxed);
  return total;
}

}  // namespace shardkit::bench
