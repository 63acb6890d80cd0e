// ManualScheduler (test-driven time) and RealTimeScheduler (a background thread).
#include <shardkit/testing/scheduler.h>

#include <algorithm>
#include <chrono>

namespace shardkit::testing {

ManualScheduler::ManualScheduler(ManualClock* clock) {
  if (clock == nullptr) {
    owned_clock_ = std::make_unique<ManualClock>();
    clock = owned_clock_.get();
  }
  clock_ = clock;
}

void ManualScheduler::RunAfter(int64_t delay_ms, std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu_);
  tasks_.emplace(std::make_pair(clock_->NowMs() + std::max<int64_t>(delay_ms, 0), next_seq_++),
                 std::move(task));
}

size_t ManualScheduler::Advance(int64_t ms) {
  const int64_t end = clock_->NowMs() + std::max<int64_t>(ms, 0);
  size_t ran = 0;
  for (;;) {
    std::function<void()> task;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (tasks_.empty() || tasks_.begin()->first.first > end) break;
      auto it = tasks_.begin();
      if (it->first.first > clock_->NowMs()) clock_->Set(it->first.first);
      task = std::move(it->second);
      tasks_.erase(it);
    }
    task();
    ++ran;
  }
  if (clock_->NowMs() < end) clock_->Set(end);
  return ran;
}

size_t ManualScheduler::RunDue() { return Advance(0); }

bool ManualScheduler::RunNext() {
  std::function<void()> task;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (tasks_.empty()) return false;
    auto it = tasks_.begin();
    if (it->first.first > clock_->NowMs()) clock_->Set(it->first.first);
    task = std::move(it->second);
    tasks_.erase(it);
  }
  task();
  return true;
}

size_t ManualScheduler::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

std::optional<int64_t> ManualScheduler::NextDueMs() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (tasks_.empty()) return std::nullopt;
  return tasks_.begin()->first.first;
}

RealTimeScheduler::RealTimeScheduler() : thread_([this] { Loop(); }) {}

RealTimeScheduler::~RealTimeScheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void RealTimeScheduler::RunAfter(int64_t delay_ms, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.emplace(std::make_pair(clock().NowMs() + std::max<int64_t>(delay_ms, 0), next_seq_++),
                   std::move(task));
  }
  cv_.notify_all();
}

void RealTimeScheduler::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (tasks_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto it = tasks_.begin();
    int64_t wait_ms = it->first.first - clock().NowMs();
    if (wait_ms > 0) {
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms));
      continue;
    }
    auto task = std::move(it->second);
    tasks_.erase(it);
    lock.unlock();
    task();
    lock.lock();
  }
}

}  // namespace shardkit::testing
