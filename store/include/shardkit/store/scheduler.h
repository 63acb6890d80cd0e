// Scheduler: one thread that runs timed tasks from a heap, so periodic and delayed work (TTL
// purges, WAL syncs, the end of a long-poll) costs no thread of its own and no wake-up while
// nothing is due. An idle scheduler sleeps until its next task (forever when it has none).
//
// Tasks run one at a time on the scheduler's thread, in time order: keep them short. A task that
// blocks (an fsync, a purge round) delays the ones due after it, which suits maintenance work;
// work a client waits for belongs on an executor, with only the signal to start it scheduled here.
//
// Thread-safety: every method may be called from any thread, tasks included. A task must not
// throw.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <utility>
#include <vector>

namespace shardkit::store {

class Scheduler {
 public:
  using TaskId = uint64_t;  // never 0
  using Duration = std::chrono::milliseconds;

  // Starts the thread.
  Scheduler();
  // Stop().
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The process's scheduler (never destroyed): stores use it unless given another.
  static Scheduler& Shared();

  // Runs `task` once, `delay` from now (0: as soon as the thread is free).
  TaskId After(Duration delay, std::function<void()> task);
  // Runs `task` every `period` (> 0), the first time one period from now. A round that overruns
  // its period is not made up: the next then starts one period after it was taken off the heap.
  TaskId Every(Duration period, std::function<void()> task);
  // Removes a task; true if it was still scheduled. If the task is running on another thread,
  // waits until that run has returned, so its owner may be destroyed afterwards (called from the
  // task itself, it does not wait).
  bool Cancel(TaskId id);
  // Drops every task and joins the thread (a running task finishes first). Later After/Every
  // calls are ignored. Idempotent.
  void Stop();

  // Tasks scheduled and not yet run (periodic ones count until cancelled).
  size_t pending() const;

 private:
  using Time = std::chrono::steady_clock::time_point;
  struct Task {
    Time due;
    Duration period;  // zero: runs once
    std::shared_ptr<std::function<void()>> run;
  };
  TaskId Add(Duration delay, Duration period, std::function<void()> task);
  void Loop();

  mutable std::mutex mu_;
  std::condition_variable changed_;   // a task was added or Stop was called
  std::condition_variable finished_;  // a run returned
  std::map<TaskId, Task> tasks_;      // guarded by mu_
  // (due, id), earliest first; entries of cancelled or rescheduled tasks are skipped lazily.
  std::priority_queue<std::pair<Time, TaskId>, std::vector<std::pair<Time, TaskId>>,
                      std::greater<>>
      heap_;              // guarded by mu_
  TaskId next_id_ = 1;    // guarded by mu_
  TaskId running_ = 0;    // guarded by mu_: the task whose run is in progress
  bool stopped_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace shardkit::store
