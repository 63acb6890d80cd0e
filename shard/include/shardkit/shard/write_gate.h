// WriteGate: the switch in front of a shard's writes that a live migration's cutover throws.
//
//   open     writes pass (counted while in flight)
//   closed   new writes are held, not failed; Drain() waits for the writes already admitted
//   retired  the range has moved: held and new writes answer wrong_shard, so routers refresh
//            their map and resend to the new owner (the client sees no error)
// Reopening a closed gate (an abandoned cutover) lets the held writes through in arrival order.
//
// A live migration may hold the gate of a shard served by another node: that node's guard is
// driven over the network by a subclass (services/adapters/remote_store.h), so the state-changing
// methods are virtual.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

namespace shardkit::shard {

class WriteGate {
 public:
  enum class State { kOpen, kClosed, kRetired };
  virtual ~WriteGate() = default;

  // Runs `write` now (open), later (closed), or calls `refuse` (retired). `write` receives a
  // `done` callback to call once the write has been answered, which ends its in-flight count.
  void Admit(std::function<void(std::function<void()> done)> write, std::function<void()> refuse);

  virtual void Close();
  // Waits until no admitted write is in flight; false if `timeout` passed first.
  virtual bool Drain(std::chrono::milliseconds timeout);
  virtual void Open();
  virtual void Retire();

  virtual State state() const;
  size_t held() const;
  size_t in_flight() const;

 private:
  struct Held {
    std::function<void(std::function<void()>)> write;
    std::function<void()> refuse;
  };
  void Run(std::function<void(std::function<void()>)> write);

  mutable std::mutex mu_;
  std::condition_variable drained_;
  State state_ = State::kOpen;  // guarded by mu_
  size_t in_flight_ = 0;        // guarded by mu_
  std::vector<Held> held_;      // guarded by mu_
};

}  // namespace shardkit::shard
