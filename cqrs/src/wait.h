// Internal to cqrs/: how the applier and projection threads sleep until there is work.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace shardkit::cqrs::internal {

using SteadyTime = std::chrono::steady_clock::time_point;

// Waits on `cv` until `ready()`, and at most until `deadline` (SteadyTime::max(): no deadline).
template <typename Ready>
void WaitReady(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, SteadyTime deadline,
               Ready ready) {
  if (deadline == SteadyTime::max()) {
    cv.wait(lock, ready);
  } else {
    cv.wait_until(lock, deadline, ready);
  }
}

}  // namespace shardkit::cqrs::internal
