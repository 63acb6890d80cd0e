// Metrics: what a node counts, for GET /metrics (Prometheus text format) and sys:stats (JSON).
//
//   shardkit_messages_total{pattern,outcome}   per route: outcome is ok or an error code
//   shardkit_requests_total{outcome}           per request entering a listener
//   shardkit_request_seconds                   histogram of request latency at the listener
//   shardkit_in_flight                         requests entered and not yet answered
//   shardkit_queue_depth{service}              in-flight requests per service (its bounded queue)
//
// Counting is lock-free on the hot path, each count kept per thread (StripedCounters: the node's
// I/O threads count every request, and counters they shared passed their cache lines between the
// cores on each one); RouteStats objects are created once per route pattern and reused across
// reloads.
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "shardkit/message/status.h"
#include "shardkit/message/thread_slots.h"

namespace shardkit {
class JsonObject;
}  // namespace shardkit

namespace shardkit::services {

inline constexpr size_t kCodeCount = static_cast<size_t>(Code::kNoRoute) + 1;

inline constexpr size_t kLatencyBuckets = 15;  // Metrics::kBuckets, then +Inf

struct RouteStats {
  StripedCounters<kCodeCount> by_code;
  StripedCounters<kLatencyBuckets> latency;  // handled in, per bucket
  void Count(Code code) { by_code.Add(static_cast<size_t>(code)); }
  void Count(Code code, int64_t micros);  // and its latency
};

// The in-flight counter of one service (its bounded queue).
struct QueueStats {
  std::atomic<int64_t> depth{0};
};

class Metrics {
 public:
  Metrics();

  // The counters of route `pattern` (created on first use; the same object afterwards).
  std::shared_ptr<RouteStats> Route(const std::string& pattern);
  // The queue of service `name` (created on first use; the same object afterwards).
  std::shared_ptr<QueueStats> Queue(const std::string& name);

  // A request entered a listener / was answered after `micros` with `code`.
  void RequestStarted() { totals_.Add(kInFlight); }
  void RequestFinished(Code code, int64_t micros);
  int64_t in_flight() const { return totals_.Sum(kInFlight); }
  uint64_t requests(Code code) const {
    return static_cast<uint64_t>(requests_.Sum(static_cast<size_t>(code)));
  }

  std::string PrometheusText() const;
  // {"in_flight":0,"requests":{"ok":12,…},"routes":{"store:*":{"ok":12}},"queues":{"kv":0},
  //  "latency_ms":{"p50":…,"p99":…},"route_latency_ms":{"store:*":{"p50":…,"p99":…}}}
  // Quantiles are bucket upper bounds (kBuckets), as Prometheus' histogram_quantile would bound.
  std::string Json() const;
  // The same members, added to `out` (sys:stats adds the node's own after them).
  void AddTo(JsonObject& out) const;

  // Histogram bucket upper bounds, in seconds.
  static constexpr std::array<double, kLatencyBuckets - 1> kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

 private:
  static constexpr size_t kInFlight = 0, kLatencySumUs = 1;
  StripedCounters<2> totals_;  // kInFlight, kLatencySumUs
  StripedCounters<kCodeCount> requests_;
  StripedCounters<kLatencyBuckets> buckets_;  // last: +Inf

  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<RouteStats>> routes_;  // guarded by mutex_
  std::map<std::string, std::shared_ptr<QueueStats>> queues_;  // guarded by mutex_
};

}  // namespace shardkit::services
