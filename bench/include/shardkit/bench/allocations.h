// Allocation counts for the benchmarks' `allocs_per_*` figures, so that an allocation added to a
// hot path shows as a number. A program that wants them replaces the global operator new with one
// that calls CountAllocation (the `shardkit` executable does, cli/count_allocations.cc); in any
// other program (and in sanitizer builds, whose allocator must stay in charge) nothing counts and
// the figures are reported as null.
#pragma once

#include <cstdint>

namespace shardkit::bench {

// Called by the replaced operator new on every allocation: one relaxed increment of this
// thread's own counter.
void CountAllocation() noexcept;
// Called once by the program that counts.
void EnableAllocationCounting() noexcept;
bool AllocationsCounted() noexcept;
// Allocations so far, on every thread.
uint64_t Allocations() noexcept;

}  // namespace shardkit::bench
