#include "shardkit/store/scheduler.h"

#include "shardkit/message/thread_name.h"

namespace shardkit::store {

Scheduler::Scheduler() : thread_([this] { Loop(); }) {}

Scheduler::~Scheduler() { Stop(); }

Scheduler& Scheduler::Shared() {
  // Leaked on purpose: stores held by static objects may still cancel their tasks at exit.
  static Scheduler* shared = new Scheduler();
  return *shared;
}

Scheduler::TaskId Scheduler::After(Duration delay, std::function<void()> task) {
  return Add(std::max(delay, Duration(0)), Duration(0), std::move(task));
}

Scheduler::TaskId Scheduler::Every(Duration period, std::function<void()> task) {
  return Add(std::max(period, Duration(1)), std::max(period, Duration(1)), std::move(task));
}

Scheduler::TaskId Scheduler::Add(Duration delay, Duration period, std::function<void()> task) {
  const Time due = std::chrono::steady_clock::now() + delay;
  TaskId id = 0;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return 0;
    id = next_id_++;
    tasks_.emplace(id, Task{due, period, std::make_shared<std::function<void()>>(std::move(task))});
    heap_.emplace(due, id);
    // Only a task that is now the earliest changes when the thread must wake.
    if (heap_.top().second != id) return id;
  }
  changed_.notify_one();
  return id;
}

bool Scheduler::Cancel(TaskId id) {
  std::unique_lock lock(mu_);
  const bool found = tasks_.erase(id) > 0;
  if (std::this_thread::get_id() != thread_.get_id()) {
    finished_.wait(lock, [&] { return running_ != id; });
  }
  return found;
}

void Scheduler::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_ && !thread_.joinable()) return;
    stopped_ = true;
    tasks_.clear();
  }
  changed_.notify_all();
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
}

size_t Scheduler::pending() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

void Scheduler::Loop() {
  NameThisThread("sk-scheduler");
  std::unique_lock lock(mu_);
  while (!stopped_) {
    if (heap_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const auto [due, id] = heap_.top();
    auto it = tasks_.find(id);
    if (it == tasks_.end() || it->second.due != due) {
      heap_.pop();  // cancelled, or a stale entry of a periodic task
      continue;
    }
    if (due > std::chrono::steady_clock::now()) {
      changed_.wait_until(lock, due);
      continue;
    }
    heap_.pop();
    std::shared_ptr<std::function<void()>> run = it->second.run;
    if (it->second.period > Duration(0)) {
      const Time now = std::chrono::steady_clock::now();
      it->second.due = due + it->second.period;
      if (it->second.due <= now) it->second.due = now + it->second.period;  // overran: no burst
      heap_.emplace(it->second.due, id);
    } else {
      tasks_.erase(it);
    }
    running_ = id;
    lock.unlock();
    (*run)();
    run.reset();  // the task's captures go before its cancel returns
    lock.lock();
    running_ = 0;
    finished_.notify_all();
  }
}

}  // namespace shardkit::store
