#include "shardkit/services/metrics.h"

#include <fmt/format.h>

#include "prometheus_text.h"
#include "shardkit/message/json.h"

namespace shardkit::services {
namespace {

Code CodeAt(size_t i) { return static_cast<Code>(i); }

size_t BucketOf(int64_t micros) {
  double seconds = static_cast<double>(micros) / 1e6;
  size_t bucket = 0;
  while (bucket < Metrics::kBuckets.size() && seconds > Metrics::kBuckets[bucket]) ++bucket;
  return bucket;
}

// The upper bound (ms) of the bucket holding quantile `q`; 0 with no observations.
double QuantileMs(const std::array<int64_t, kLatencyBuckets>& buckets, double q) {
  const auto& bounds = Metrics::kBuckets;
  int64_t total = 0;
  for (int64_t b : buckets) total += b;
  if (total <= 0) return 0;
  auto rank = static_cast<int64_t>(q * static_cast<double>(total));
  int64_t seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    seen += buckets[i];
    if (seen > rank) return i < bounds.size() ? bounds[i] * 1000 : bounds.back() * 1000;
  }
  return bounds.back() * 1000;
}

JsonObject Quantiles(const std::array<int64_t, kLatencyBuckets>& buckets) {
  return JsonObject()
      .AddRaw("p50", fmt::format("{}", QuantileMs(buckets, 0.5)))
      .AddRaw("p99", fmt::format("{}", QuantileMs(buckets, 0.99)));
}

}  // namespace

Metrics::Metrics() = default;

std::shared_ptr<RouteStats> Metrics::Route(const std::string& pattern) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = routes_[pattern];
  if (!slot) slot = std::make_shared<RouteStats>();
  return slot;
}

std::shared_ptr<QueueStats> Metrics::Queue(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = queues_[name];
  if (!slot) slot = std::make_shared<QueueStats>();
  return slot;
}

void Metrics::RequestFinished(Code code, int64_t micros) {
  totals_.Add(kInFlight, -1);
  totals_.Add(kLatencySumUs, micros < 0 ? 0 : micros);
  requests_.Add(static_cast<size_t>(code));
  buckets_.Add(BucketOf(micros));
}

void RouteStats::Count(Code code, int64_t micros) {
  Count(code);
  latency.Add(BucketOf(micros));
}

std::string Metrics::PrometheusText() const {
  std::string out;
  out += "# HELP shardkit_messages_total Messages handled per route pattern and outcome.\n";
  out += "# TYPE shardkit_messages_total counter\n";
  std::map<std::string, std::shared_ptr<RouteStats>> routes;
  std::map<std::string, std::shared_ptr<QueueStats>> queues;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    routes = routes_;
    queues = queues_;
  }
  for (const auto& [pattern, stats] : routes) {
    const auto by_code = stats->by_code.Sums();
    for (size_t i = 0; i < kCodeCount; ++i) {
      const int64_t n = by_code[i];
      if (n == 0) continue;
      out += fmt::format("shardkit_messages_total{{pattern=\"{}\",outcome=\"{}\"}} {}\n",
                         LabelValue(pattern), CodeName(CodeAt(i)), n);
    }
  }
  out += "# HELP shardkit_requests_total Requests answered by the listeners, per outcome.\n";
  out += "# TYPE shardkit_requests_total counter\n";
  const auto requests = requests_.Sums();
  for (size_t i = 0; i < kCodeCount; ++i) {
    out += fmt::format("shardkit_requests_total{{outcome=\"{}\"}} {}\n", CodeName(CodeAt(i)),
                       requests[i]);
  }
  out +=
      "# HELP shardkit_errors_total Error replies by code.\n# TYPE shardkit_errors_total counter\n";
  for (size_t i = 1; i < kCodeCount; ++i) {
    out +=
        fmt::format("shardkit_errors_total{{code=\"{}\"}} {}\n", CodeName(CodeAt(i)), requests[i]);
  }
  out += "# HELP shardkit_request_seconds Request latency at the listener.\n";
  out += "# TYPE shardkit_request_seconds histogram\n";
  const auto buckets = buckets_.Sums();
  int64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += buckets[i];
    out +=
        fmt::format("shardkit_request_seconds_bucket{{le=\"{}\"}} {}\n", kBuckets[i], cumulative);
  }
  cumulative += buckets.back();
  out += fmt::format("shardkit_request_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  out += fmt::format("shardkit_request_seconds_sum {}\n",
                     static_cast<double>(totals_.Sum(kLatencySumUs)) / 1e6);
  out += fmt::format("shardkit_request_seconds_count {}\n", cumulative);
  out += "# HELP shardkit_in_flight Requests being handled.\n# TYPE shardkit_in_flight gauge\n";
  out += fmt::format("shardkit_in_flight {}\n", in_flight());
  out +=
      "# HELP shardkit_queue_depth In-flight requests per service.\n# TYPE shardkit_queue_depth "
      "gauge\n";
  for (const auto& [name, stats] : queues) {
    out += fmt::format("shardkit_queue_depth{{service=\"{}\"}} {}\n", LabelValue(name),
                       stats->depth.load(std::memory_order_relaxed));
  }
  return out;
}

void Metrics::AddTo(JsonObject& out) const {
  std::map<std::string, std::shared_ptr<RouteStats>> routes;
  std::map<std::string, std::shared_ptr<QueueStats>> queues;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    routes = routes_;
    queues = queues_;
  }
  auto codes = [](const StripedCounters<kCodeCount>& counters) {
    JsonObject out;
    const auto counts = counters.Sums();
    for (size_t i = 0; i < kCodeCount; ++i) {
      const auto n = static_cast<uint64_t>(counts[i]);
      if (n != 0) out.Add(CodeName(CodeAt(i)), n);
    }
    return out;
  };
  JsonObject by_route, route_latency;
  for (const auto& [pattern, stats] : routes) {
    by_route.Add(pattern, codes(stats->by_code));
    route_latency.Add(pattern, Quantiles(stats->latency.Sums()));
  }
  JsonObject by_queue;
  for (const auto& [name, stats] : queues)
    by_queue.Add(name, stats->depth.load(std::memory_order_relaxed));
  out.Add("in_flight", in_flight())
      .Add("requests", codes(requests_))
      .Add("routes", by_route)
      .Add("queues", by_queue)
      .Add("latency_ms", Quantiles(buckets_.Sums()))
      .Add("route_latency_ms", route_latency);
}

std::string Metrics::Json() const {
  JsonObject out;
  AddTo(out);
  return out.str();
}

}  // namespace shardkit::services
