// Blocks of cache lines of their own, for what every thread reads on every message (a routing
// table, a cache's buckets and counters) while other threads write elsewhere. A block from the
// general heap shares its first and last lines with its neighbours, whatever they are: a thread
// writing one of those (a message it builds, a count it bumps) takes the line from every reader's
// cache, and each read then waits for it to come back (false sharing). In `bench cache`, the
// routing table built by the first client thread amid its messages took four times as long to
// read with two client threads as with one (docs/performance.md, "Lines of their own").
//
// Thread-safety: stateless.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace shardkit {

inline constexpr size_t kCacheLine = 64;

// Allocates whole cache lines, aligned to one.
template <typename T>
struct LineAllocator {
  using value_type = T;
  LineAllocator() = default;
  template <typename U>
  LineAllocator(const LineAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit
  static size_t Bytes(size_t n) {
    return (n * sizeof(T) + kCacheLine - 1) / kCacheLine * kCacheLine;
  }
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new (Bytes(n), std::align_val_t{kCacheLine}));
  }
  // The unsized form: clang before 19 declares no sized deallocation unless asked to.
  void deallocate(T* p, size_t) noexcept { ::operator delete (p, std::align_val_t{kCacheLine}); }
  friend bool operator==(const LineAllocator&, const LineAllocator&) { return true; }
};

template <typename T>
using LineVector = std::vector<T, LineAllocator<T>>;

}  // namespace shardkit
