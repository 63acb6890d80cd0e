// Replicator: tails one store's change feed, filtered to a ksid range, into another store, with
// the applied position stored atomically with the applied data (EntityStore::ApplyReplicated).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <shardkit/store/entity_store.h>

namespace shardkit::migrate::internal {

class Replicator {
 public:
  // `consumer` is registered on `from`'s feed by the caller; the replicator advances it. It reads
  // `from`'s feed after the position recorded for `stream` in `to`, or after `start_after` if that
  // is further: the position of the last swap, before which `from`'s feed holds only what
  // replication brought in (replaying it would copy the migration's own traffic back).
  Replicator(std::string stream, std::string consumer, std::shared_ptr<store::EntityStore> from,
             std::shared_ptr<store::EntityStore> to, store::KsidRange range,
             uint64_t start_after = 0);
  ~Replicator();

  void Start();
  void Stop();
  // Applies everything available now, on the calling thread (tests, and Start's loop).
  Result<uint64_t> Step(size_t batch = 1000);

  uint64_t applied() const { return applied_.load(); }
  uint64_t lag() const;
  // Waits until the applied position reaches `position`; false on timeout, a stop or a failure.
  bool WaitUntil(uint64_t position, std::chrono::milliseconds timeout);
  // Why the replicator stopped for good (ok while it runs): the records after its position were
  // trimmed from the source's feed (its consumer lagged beyond max_consumer_lag_ms and was
  // dropped), so it cannot catch up; the migration is cancelled and started again.
  Status failure() const;
  const std::string& stream() const { return stream_; }

 private:
  Status ReadPosition();
  void WaitForRecords();
  // Records why the replicator stops for good and wakes WaitUntil.
  void Fail(const Status& read);

  const std::string stream_;
  const std::string consumer_;
  std::shared_ptr<store::EntityStore> from_;
  std::shared_ptr<store::EntityStore> to_;
  const store::KsidRange range_;
  const uint64_t start_after_;
  bool positioned_ = false;  // applied_ holds the receiving store's position (Step's thread)
  std::atomic<uint64_t> applied_{0};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable progressed_;
  Status failure_;  // guarded by mu_
  // Set by the source feed's WhenAppended wake (shared: the wake may outlive the replicator).
  struct Signal {
    std::mutex mu;
    std::condition_variable cv;
    bool appended = false;  // guarded by mu
  };
  std::shared_ptr<Signal> signal_ = std::make_shared<Signal>();
  std::thread thread_;
};

}  // namespace shardkit::migrate::internal
