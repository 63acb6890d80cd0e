// WaitFor: polling in real time, or stepping a ManualScheduler.
#include <shardkit/testing/wait.h>

#include <thread>

namespace shardkit::testing {

::testing::AssertionResult WaitFor(const std::function<bool()>& condition,
                                   std::chrono::milliseconds timeout,
                                   std::chrono::milliseconds poll) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (condition()) return ::testing::AssertionSuccess();
    auto waited = std::chrono::steady_clock::now() - start;
    if (waited >= timeout) {
      return ::testing::AssertionFailure()
             << "condition still false after waiting " << timeout.count() << " ms";
    }
    std::this_thread::sleep_for(poll);
  }
}

::testing::AssertionResult WaitFor(ManualScheduler& scheduler,
                                   const std::function<bool()>& condition, int64_t timeout_ms) {
  const int64_t start = scheduler.clock().NowMs();
  const int64_t end = start + timeout_ms;
  for (;;) {
    if (condition()) return ::testing::AssertionSuccess();
    auto due = scheduler.NextDueMs();
    if (!due) {
      return ::testing::AssertionFailure()
             << "condition still false and nothing scheduled, after "
             << scheduler.clock().NowMs() - start << " ms of simulated time";
    }
    if (*due > end) {
      scheduler.Advance(end - scheduler.clock().NowMs());
      return ::testing::AssertionFailure()
             << "condition still false after " << timeout_ms << " ms of simulated time ("
             << scheduler.pending() << " task(s) pending)";
    }
    scheduler.RunNext();
  }
}

}  // namespace shardkit::testing
