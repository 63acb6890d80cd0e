// Internal to cluster.cc: one watch of a JetStream KV bucket, stepped by the thread that owns it.
// The thread blocks in kvWatcher_Next until the server sends an entry, its own wait ends, or at
// most kResyncCheckMs: a watcher whose consumer may be gone (after a reconnect) cannot be stopped
// safely (libnats 3.4, see Retire in kv_watch.cc), so a reconnect is noticed at the next return,
// not by interrupting the wait. A stop interrupts the wait when the watcher is healthy. It also
// waits while broken: 200 ms between failed opens, 100 ms after an error, and until the
// connection is back before reopening after a reconnect.
#pragma once

#include <nats/nats.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "nats_link.h"

namespace shardkit::services {

class KvWatch {
 public:
  enum class Step {
    kEntry,   // *entry is an entry (the caller destroys it)
    kLoaded,  // the keys present when the watch opened were all delivered
    kOpened,  // the watcher was (re)opened
    kNone,    // nothing (the wait ended, or a pause while broken)
    kStop,    // Interrupt(true) was called: the thread ends
  };
  // Watches `keys` of `kv` (every key when empty). Opens on the first Next.
  KvWatch(kvStore* kv, std::string keys, const NatsLink& link)
      : kv_(kv), keys_(std::move(keys)), link_(link) {}
  ~KvWatch() { Close(); }
  KvWatch(const KvWatch&) = delete;
  KvWatch& operator=(const KvWatch&) = delete;

  // The longest one wait for an entry lasts, so a resync is seen that soon.
  static constexpr int64_t kResyncCheckMs = 1'000;

  // Any thread: stop (for good), or resync (reopen: a reconnect may have lost the consumer).
  void Interrupt(bool stop);
  // The owning thread: one step, waiting up to `wait_ms` for an entry.
  Step Next(int64_t wait_ms, kvEntry** entry);
  // The owning thread, at its end: destroys the watcher, or parks it when it may have lost its
  // consumer (see Retire in kv_watch.cc).
  void Close();

 private:
  kvStore* const kv_;
  const std::string keys_;
  const NatsLink& link_;
  std::mutex mu_;
  std::condition_variable cv_;    // a stop, or the connection came back
  kvWatcher* current_ = nullptr;  // guarded by mu_
  bool resync_ = false;           // guarded by mu_: reopen current_ (an error or a reconnect)
  bool stop_ = false;             // guarded by mu_
};

}  // namespace shardkit::services
