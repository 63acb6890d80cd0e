#include "change_waits.h"

#include <vector>

namespace shardkit::store::internal {

ChangeWaits::ChangeWaits(ChangeFeed& feed, Scheduler& scheduler, Run run)
    : feed_(feed), scheduler_(scheduler), run_(std::move(run)) {}

ChangeWaits::~ChangeWaits() { Close(); }

void ChangeWaits::Close() {
  std::map<uint64_t, Waiter> left;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    left.swap(waiters_);
  }
  // Timers and wakes hold weak pointers and find nothing left to answer; cancel the timers so
  // they do not linger in the scheduler. Each reply is sent exactly once.
  for (auto& [id, waiter] : left) {
    if (waiter.timer != 0) scheduler_.Cancel(waiter.timer);
    waiter.then();
  }
}

void ChangeWaits::Wait(uint64_t from, std::chrono::milliseconds wait, std::function<void()> then) {
  const uint64_t after = from == 0 ? 0 : from - 1;
  uint64_t id = 0;
  bool arm = false;
  {
    std::unique_lock lock(mu_);
    if (closed_) {
      lock.unlock();
      return then();
    }
    id = next_id_++;
    waiters_.emplace(id, Waiter{from, 0, std::move(then)});
    // One wake serves every waiter at or above the armed position; a lower one needs its own.
    arm = !armed_after_ || after < *armed_after_;
    if (arm) armed_after_ = after;
  }
  std::weak_ptr<ChangeWaits> weak = weak_from_this();
  const Scheduler::TaskId timer = scheduler_.After(wait, [weak, id] {
    if (auto self = weak.lock()) self->Expire(id);
  });
  {
    std::lock_guard lock(mu_);
    if (auto it = waiters_.find(id); it != waiters_.end()) it->second.timer = timer;
  }
  if (arm) Arm(after);
}

size_t ChangeWaits::waiting() const {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

void ChangeWaits::Arm(uint64_t after) {
  std::weak_ptr<ChangeWaits> weak = weak_from_this();
  // The wake runs with the store's write lock held: it only posts the delivery.
  feed_.WhenAppended(after, [weak, run = run_] {
    run([weak] {
      if (auto self = weak.lock()) self->Deliver();
    });
  });
}

void ChangeWaits::Deliver() {
  std::vector<Waiter> due;
  {
    // The feed is read under mu_ only while not closed: Close() runs before the store closes.
    std::lock_guard lock(mu_);
    if (closed_) return;
    const uint64_t last = feed_.LastSequence();
    std::optional<uint64_t> rearm;
    armed_after_.reset();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.from <= last) {
        due.push_back(std::move(it->second));
        it = waiters_.erase(it);
      } else {
        const uint64_t after = it->second.from - 1;
        if (!rearm || after < *rearm) rearm = after;
        ++it;
      }
    }
    armed_after_ = rearm;
    // The feed calls the wake at once when the record is there already; it only posts.
    if (rearm) Arm(*rearm);
  }
  for (Waiter& waiter : due) {
    scheduler_.Cancel(waiter.timer);
    waiter.then();
  }
}

void ChangeWaits::Expire(uint64_t id) {
  std::function<void()> then;
  {
    std::lock_guard lock(mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    then = std::move(it->second.then);
    waiters_.erase(it);
  }
  run_(std::move(then));
}

}  // namespace shardkit::store::internal
