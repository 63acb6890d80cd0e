// The `shardkit` executable's global operator new counts allocations for the benchmarks'
// `allocs_per_*` figures (shardkit/bench/allocations.h): one relaxed increment of the thread's
// own counter, then malloc. Left out under AddressSanitizer, whose own operator new checks
// new/delete pairing.
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "shardkit/bench/allocations.h"

#if defined(__SANITIZE_ADDRESS__)
#define SHARDKIT_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHARDKIT_ADDRESS_SANITIZER 1
#endif
#endif

#ifndef SHARDKIT_ADDRESS_SANITIZER
namespace {

// One counter per thread, each on its own cache line: a count shared by every thread would
// bounce its line between the cores on every allocation and slow the multi-threaded benchmarks
// it does not measure. A slot written by one thread only needs no atomic read-modify-write (a
// locked add per allocation cost about 2% of a CQRS run's cycles, a call into another file about
// as much again): a relaxed load and store, inlined here. A thread gives its slot back as it
// ends, for the next thread to start: `bench cache` starts new client threads for every slice,
// and when slots were never given back, every thread past the 63rd shared the last one, adding
// to it atomically (operator new took 5-7% of both sides' samples at eight client threads).
// Threads past 63 alive at once still share that last slot.
struct alignas(64) Slot {
  std::atomic<uint64_t> count{0};
};
constexpr unsigned kSlots = 64;
constexpr unsigned kShared = kSlots - 1;
Slot slots[kSlots];
std::atomic<uint64_t> free_slots{(uint64_t{1} << kShared) - 1};  // bit i: slot i is free
constinit thread_local unsigned my_slot = kSlots;                // kSlots: none yet

// Gives the thread's slot back when the thread ends. The release pairs with ClaimSlot's acquire:
// the next owner continues from this thread's last count.
struct SlotRelease {
  bool held = false;
  ~SlotRelease() {
    const unsigned slot = my_slot;
    my_slot = kShared;  // what the thread still allocates as it ends is added atomically
    if (slot < kShared) free_slots.fetch_or(uint64_t{1} << slot, std::memory_order_release);
  }
};
thread_local SlotRelease slot_release;

[[gnu::noinline]] void ClaimSlot() noexcept {
  my_slot = kShared;
  uint64_t free = free_slots.load(std::memory_order_relaxed);
  while (free != 0) {
    const unsigned slot = static_cast<unsigned>(std::countr_zero(free));
    if (free_slots.compare_exchange_weak(free, free & ~(uint64_t{1} << slot),
                                         std::memory_order_acquire, std::memory_order_relaxed)) {
      my_slot = slot;
      slot_release.held = true;  // its first use registers its destructor for the thread's end
      return;
    }
  }
}

inline void CountAllocation() noexcept {
  if (my_slot == kSlots) [[unlikely]]
    ClaimSlot();
  std::atomic<uint64_t>& count = slots[my_slot].count;
  if (my_slot != kShared) [[likely]] {
    count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    count.fetch_add(1, std::memory_order_relaxed);
  }
}

uint64_t TotalAllocations() {
  uint64_t total = 0;
  for (const Slot& slot : slots) total += slot.count.load(std::memory_order_relaxed);
  return total;
}

const bool enabled = [] {
  shardkit::bench::EnableAllocationCounting(TotalAllocations);
  return true;
}();

void* Allocate(std::size_t size) {
  CountAllocation();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

void* AllocateAligned(std::size_t size, std::align_val_t align) {
  CountAllocation();
  const auto a = static_cast<std::size_t>(align);
  // aligned_alloc wants a size that is a multiple of the alignment.
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t size) { return Allocate(size); }
void* operator new[](std::size_t size) { return Allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return Allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return operator new(size, tag);
}
void* operator new(std::size_t size, std::align_val_t align) {
  return AllocateAligned(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return AllocateAligned(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif
