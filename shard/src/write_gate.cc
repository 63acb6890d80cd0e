#include "shardkit/shard/write_gate.h"

namespace shardkit::shard {

void WriteGate::Run(std::function<void(std::function<void()>)> write) {
  write([this] {
    std::lock_guard<std::mutex> lock(mu_);
    if (--in_flight_ == 0) drained_.notify_all();
  });
}

void WriteGate::Admit(std::function<void(std::function<void()>)> write,
                      std::function<void()> refuse) {
  State state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state = state_;
    if (state == State::kClosed) {
      held_.push_back(Held{std::move(write), std::move(refuse)});
      return;
    }
    if (state == State::kOpen) ++in_flight_;
  }
  if (state == State::kRetired) {
    refuse();
    return;
  }
  Run(std::move(write));
}

void WriteGate::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kOpen) state_ = State::kClosed;
}

bool WriteGate::Drain(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return drained_.wait_for(lock, timeout, [this] { return in_flight_ == 0; });
}

void WriteGate::Open() {
  std::vector<Held> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kOpen;
    held.swap(held_);
    in_flight_ += held.size();
  }
  for (Held& h : held) Run(std::move(h.write));
}

void WriteGate::Retire() {
  std::vector<Held> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kRetired;
    held.swap(held_);
  }
  for (Held& h : held) h.refuse();
}

WriteGate::State WriteGate::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

size_t WriteGate::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_.size();
}

size_t WriteGate::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

}  // namespace shardkit::shard
