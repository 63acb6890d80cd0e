// The Scheduler: tasks run at their times, in time order, periodic ones repeat, a cancel waits for
// a running task, and Stop drops what is pending and joins.
#include "shardkit/store/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace shardkit::store {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(store_scheduler, TasksRunAtTheirTimesInTimeOrder) {
  Scheduler scheduler;
  std::mutex mu;
  std::vector<std::pair<int, Clock::duration>> ran;
  std::promise<void> all;
  const auto start = Clock::now();
  auto record = [&](int n) {
    std::lock_guard lock(mu);
    ran.emplace_back(n, Clock::now() - start);
    if (ran.size() == 3) all.set_value();
  };
  // Due 200, 400 and 600 ms after `start`, scheduled out of order (delays taken from `start`, so a
  // test thread descheduled between the calls does not reorder them).
  auto in = [&](int n) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(start + n * 200ms - Clock::now());
  };
  scheduler.After(in(3), [&] { record(3); });
  scheduler.After(in(1), [&] { record(1); });
  scheduler.After(in(2), [&] { record(2); });
  ASSERT_EQ(all.get_future().wait_for(5s), std::future_status::ready);
  std::lock_guard lock(mu);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ran[i].first, i + 1);
    EXPECT_GE(ran[i].second, (i + 1) * 200ms - 1ms) << "task " << i + 1 << " ran early";
  }
  EXPECT_EQ(scheduler.pending(), 0u);
}

TEST(store_scheduler, EveryRepeatsUntilCancelled) {
  Scheduler scheduler;
  std::atomic<int> runs{0};
  const auto start = Clock::now();
  auto id = scheduler.Every(20ms, [&] { ++runs; });
  while (runs.load() < 5 && Clock::now() - start < 5s) std::this_thread::sleep_for(5ms);
  EXPECT_GE(runs.load(), 5);
  EXPECT_GE(Clock::now() - start, 100ms) << "five rounds of 20 ms came too fast";
  EXPECT_TRUE(scheduler.Cancel(id));
  const int after_cancel = runs.load();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(runs.load(), after_cancel) << "a cancelled task ran again";
  EXPECT_FALSE(scheduler.Cancel(id));
}

TEST(store_scheduler, CancelWaitsForARunningTask) {
  Scheduler scheduler;
  std::promise<void> started;
  std::atomic<bool> finished{false};
  auto id = scheduler.After(0ms, [&] {
    started.set_value();
    std::this_thread::sleep_for(200ms);
    finished = true;
  });
  started.get_future().wait();
  scheduler.Cancel(id);
  EXPECT_TRUE(finished.load()) << "Cancel returned while the task was still running";
}

TEST(store_scheduler, StopDropsPendingTasksAndJoins) {
  auto scheduler = std::make_unique<Scheduler>();
  std::atomic<int> runs{0};
  scheduler->After(10s, [&] { ++runs; });
  scheduler->Every(10s, [&] { ++runs; });
  EXPECT_EQ(scheduler->pending(), 2u);
  const auto start = Clock::now();
  scheduler->Stop();
  EXPECT_LT(Clock::now() - start, 2s) << "Stop waited for pending tasks";
  EXPECT_EQ(scheduler->pending(), 0u);
  EXPECT_EQ(scheduler->After(0ms, [&] { ++runs; }), 0u) << "a stopped scheduler took a task";
  scheduler.reset();
  EXPECT_EQ(runs.load(), 0);
}

TEST(store_scheduler, ATaskMayScheduleAndCancelFromItsOwnThread) {
  Scheduler scheduler;
  std::promise<void> second;
  Scheduler::TaskId self = 0;
  std::mutex mu;
  {
    std::lock_guard lock(mu);
    self = scheduler.Every(10ms, [&] {
      std::lock_guard inner(mu);
      scheduler.Cancel(self);  // from the task itself: must not wait for itself
      scheduler.After(0ms, [&] { second.set_value(); });
    });
  }
  EXPECT_EQ(second.get_future().wait_for(5s), std::future_status::ready);
}

}  // namespace
}  // namespace shardkit::store
