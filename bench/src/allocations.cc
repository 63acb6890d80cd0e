#include "shardkit/bench/allocations.h"

#include <atomic>

namespace shardkit::bench {
namespace {

std::atomic<uint64_t (*)()> total{nullptr};

}  // namespace

void EnableAllocationCounting(uint64_t (*counted)()) noexcept {
  total.store(counted, std::memory_order_relaxed);
}
bool AllocationsCounted() noexcept { return total.load(std::memory_order_relaxed) != nullptr; }
uint64_t Allocations() noexcept {
  auto* read = total.load(std::memory_order_relaxed);
  return read != nullptr ? read() : 0;
}

}  // namespace shardkit::bench
