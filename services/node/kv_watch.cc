#include "kv_watch.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace shardkit::services {
namespace {

// libnats 3.4 reads freed memory when a watcher's consumer cannot be deleted (the connection
// dropped, or the server restarted and forgot it): kvWatcher_Destroy formats an error from a
// freed string (heap-use-after-free under ASan). A watcher that saw an error is therefore never
// destroyed: it is parked here, reachable, for the life of the process (one per reconnect).
void Retire(kvWatcher* watcher, bool healthy) {
  if (watcher == nullptr) return;
  if (healthy) {
    kvWatcher_Destroy(watcher);
    return;
  }
  static std::mutex mu;
  static auto* parked = new std::vector<kvWatcher*>();
  std::lock_guard<std::mutex> lock(mu);
  parked->push_back(watcher);
}

}  // namespace

void KvWatch::Interrupt(bool stop) {
  std::lock_guard<std::mutex> lock(mu_);
  // Stopping a watcher that lost its consumer reads freed memory (Retire): only a healthy one is
  // stopped; otherwise the wait ends by itself within kResyncCheckMs.
  if (stop && current_ != nullptr && !resync_ && link_.connected()) kvWatcher_Stop(current_);
  (stop ? stop_ : resync_) = true;
  cv_.notify_all();
}

KvWatch::Step KvWatch::Next(int64_t wait_ms, kvEntry** entry) {
  kvWatcher* watcher = nullptr;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) return Step::kStop;
    if (current_ != nullptr && resync_) {
      if (!link_.connected()) {
        cv_.wait(lock, [&] { return stop_ || link_.connected(); });
        return Step::kNone;
      }
      Retire(current_, /*healthy=*/false);
      current_ = nullptr;
    }
    watcher = current_;
    if (watcher == nullptr) resync_ = false;
  }
  if (watcher == nullptr) {
    natsStatus s = keys_.empty() ? kvStore_WatchAll(&watcher, kv_, nullptr)
                                 : kvStore_Watch(&watcher, kv_, keys_.c_str(), nullptr);
    std::unique_lock<std::mutex> lock(mu_);
    if (s != NATS_OK) {
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_; });
      return Step::kNone;
    }
    current_ = watcher;  // a stop or resync meanwhile is seen by the next step
    return Step::kOpened;
  }
  natsStatus s = kvWatcher_Next(entry, watcher, std::min(wait_ms, kResyncCheckMs));
  if (s == NATS_OK) return *entry != nullptr ? Step::kEntry : Step::kLoaded;
  if (s == NATS_TIMEOUT) return Step::kNone;
  std::unique_lock<std::mutex> lock(mu_);  // stopped by Interrupt, or failed by itself
  if (!stop_ && !resync_) {
    resync_ = true;
    cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_; });
  }
  return Step::kNone;
}

void KvWatch::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  Retire(current_, /*healthy=*/!resync_ && link_.connected());
  current_ = nullptr;
}

}  // namespace shardkit::services
