// AdaptiveLock: a lock for critical sections of a few dozen instructions (a stripe's table lookup
// and policy update). std::mutex puts a contending thread to sleep at once: a futex wait, then a
// futex wake by the holder, microseconds of system calls and a context switch for a section held
// well under one. This lock first spins briefly, which settles nearly every contention while the
// holder runs on another core, and sleeps only when that did not (a preempted holder, more
// threads than cores), so spinners do not burn the holder's core either.
//
// The three states of the lock word are those of Drepper's "Futexes Are Tricky" (mutex 3): the
// holder's unlock wakes a sleeper only when one may be asleep.
//
// As with std::mutex, the thread that takes the lock after another's unlock may destroy it: past
// its exchange, unlock reads and writes nothing of the lock (the wake names only its address), so
// a cache whose last owner let go as a load landed may be freed as soon as that load unlocked.
//
// Thread-safety: that is its purpose; meets BasicLockable (std::lock_guard, std::unique_lock).
#pragma once

#include <atomic>
#include <cstdint>

namespace shardkit::cache {

class AdaptiveLock {
 public:
  void lock() noexcept {
    if (TryFree()) return;
    for (int spins = 0; spins < kSpins; ++spins) {
      Pause();
      if (state_.load(std::memory_order_relaxed) == kFree && TryFree()) return;
    }
    // Announce a sleeper, and sleep until the word changes from "locked, sleepers".
    while (state_.exchange(kContended, std::memory_order_acquire) != kFree)
      state_.wait(kContended, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    if (state_.exchange(kFree, std::memory_order_release) == kContended) state_.notify_one();
  }

 private:
  static constexpr uint32_t kFree = 0, kLocked = 1, kContended = 2;
  // About a microsecond of pauses: longer than a hit holds the lock, far shorter than a sleep.
  static constexpr int kSpins = 40;

  bool TryFree() noexcept {
    uint32_t expected = kFree;
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  static void Pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  std::atomic<uint32_t> state_{kFree};
};

}  // namespace shardkit::cache
