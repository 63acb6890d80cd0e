// Scheduler: where delayed work (a mock's Delay, an injected fault's delay or drop) waits.
//
// Tests stay deterministic with ManualScheduler: nothing happens until the test advances time, and
// due tasks run in order of due time (ties: the order they were scheduled), on the test's thread.
// RealTimeScheduler runs tasks on a background thread after real delays, for code that cannot be
// driven step by step.
//
//   ManualScheduler scheduler;                 // owns a ManualClock
//   mock.On("store:load").Reply(…).Delay(50);  // with MockOptions{.scheduler = &scheduler}
//   PendingReply r = Send(bus, m);             // not ready yet
//   scheduler.Advance(50);                     // the reply is delivered here
//
// Thread-safety: RunAfter may be called from any thread. ManualScheduler's Advance/RunNext run
// tasks on the calling thread and must not be called from inside a task.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <shardkit/message/clock.h>

namespace shardkit::testing {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Runs `task` once, `delay_ms` (>= 0) after now by clock().
  virtual void RunAfter(int64_t delay_ms, std::function<void()> task) = 0;
  virtual const Clock& clock() const = 0;
};

class ManualScheduler final : public Scheduler {
 public:
  // Uses `clock` (which must outlive the scheduler), or owns a ManualClock when null.
  explicit ManualScheduler(ManualClock* clock = nullptr);

  void RunAfter(int64_t delay_ms, std::function<void()> task) override;
  const Clock& clock() const override { return *clock_; }
  ManualClock& manual_clock() { return *clock_; }

  // Moves time forward by `ms`, stopping at each due task to run it (tasks scheduled meanwhile
  // run too when due within the window). Returns how many tasks ran.
  size_t Advance(int64_t ms);
  // Runs the tasks due now (delay 0). Returns how many ran.
  size_t RunDue();
  // Moves time to the earliest pending task and runs it; false when nothing is pending.
  bool RunNext();
  size_t pending() const;
  // When the earliest pending task is due; nullopt when nothing is pending.
  std::optional<int64_t> NextDueMs() const;

 private:
  std::unique_ptr<ManualClock> owned_clock_;
  ManualClock* clock_;
  mutable std::mutex mu_;
  uint64_t next_seq_ = 0;                                                // guarded by mu_
  std::map<std::pair<int64_t, uint64_t>, std::function<void()>> tasks_;  // guarded by mu_
};

class RealTimeScheduler final : public Scheduler {
 public:
  RealTimeScheduler();
  // Drops the tasks not yet run and joins the thread.
  ~RealTimeScheduler() override;

  void RunAfter(int64_t delay_ms, std::function<void()> task) override;
  const Clock& clock() const override { return SystemClock::Default(); }

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                                                    // guarded by mu_
  uint64_t next_seq_ = 0;                                                // guarded by mu_
  std::map<std::pair<int64_t, uint64_t>, std::function<void()>> tasks_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace shardkit::testing
