#include "shardkit/bench/allocations.h"

#include <atomic>

namespace shardkit::bench {
namespace {

std::atomic<uint64_t> allocations{0};
std::atomic<bool> counted{false};

}  // namespace

void CountAllocation() noexcept { allocations.fetch_add(1, std::memory_order_relaxed); }
void EnableAllocationCounting() noexcept { counted.store(true, std::memory_order_relaxed); }
bool AllocationsCounted() noexcept { return counted.load(std::memory_order_relaxed); }
uint64_t Allocations() noexcept { return allocations.load(std::memory_order_relaxed); }

}  // namespace shardkit::bench
