// ChangeWaits: the store:changes long-polls of one store service. A read that finds nothing new
// parks here until the feed has a record at or past its `from` (ChangeFeed::WhenAppended) or its
// wait ends (a Scheduler timer), then runs again through the service's executor: no thread blocks
// while a reader waits, and an append wakes the readers at once instead of at their next poll.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include <shardkit/store/change_feed.h>
#include <shardkit/store/scheduler.h>

namespace shardkit::store::internal {

class ChangeWaits : public std::enable_shared_from_this<ChangeWaits> {
 public:
  // Runs a callback off the committing thread (the service's executor, or the scheduler).
  using Run = std::function<void(std::function<void()>)>;

  ChangeWaits(ChangeFeed& feed, Scheduler& scheduler, Run run);
  // Close() at destruction, if the owner did not call it.
  ~ChangeWaits();

  // Answers every reader still waiting, on this thread, while the feed is still open, and stops
  // every later wake from touching the feed: the owner calls it before it closes the store (a
  // delivery already posted to another thread may outlive the store otherwise).
  void Close();

  // Calls `then` once, through `run`: as soon as the feed's last sequence is >= from, or after
  // `wait`. `then` reads the feed again (it may still find nothing when the wait ran out).
  void Wait(uint64_t from, std::chrono::milliseconds wait, std::function<void()> then);

  size_t waiting() const;

 private:
  struct Waiter {
    uint64_t from;
    Scheduler::TaskId timer;
    std::function<void()> then;
  };
  // Registers a wake with the feed for a record past `after`.
  void Arm(uint64_t after);
  // After an append (on `run`): releases the waiters it satisfies, arms again for the others.
  void Deliver();
  // A waiter's time is up.
  void Expire(uint64_t id);

  ChangeFeed& feed_;
  Scheduler& scheduler_;
  const Run run_;
  mutable std::mutex mu_;
  std::map<uint64_t, Waiter> waiters_;  // guarded by mu_
  uint64_t next_id_ = 1;                // guarded by mu_
  // guarded by mu_: the lowest `after` of the wakes registered with the feed and not yet fired
  std::optional<uint64_t> armed_after_;
  bool closed_ = false;  // guarded by mu_
};

}  // namespace shardkit::store::internal
