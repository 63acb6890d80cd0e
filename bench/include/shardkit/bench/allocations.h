// Allocation counts for the benchmarks' `allocs_per_*` figures, so that an allocation added to a
// hot path shows as a number. A program that wants them replaces the global operator new with one
// that counts and registers its total (the `shardkit` executable does, cli/count_allocations.cc);
// in any other program (and in sanitizer builds, whose allocator must stay in charge) nothing
// counts and the figures are reported as null.
#pragma once

#include <cstdint>

namespace shardkit::bench {

// Called once by the program that counts, with the function that sums its counters (on every
// thread). The counters live with that program's operator new, so its hot path is inlined there.
void EnableAllocationCounting(uint64_t (*total)()) noexcept;
bool AllocationsCounted() noexcept;
// Allocations so far, on every thread.
uint64_t Allocations() noexcept;

}  // namespace shardkit::bench
