// What `shardkit bench net`'s runs share (net_bench.cc, net_nats.cc): the store the node serves
// and what one run measured.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace shardkit::bench {

constexpr int kKeys = 1000;       // keys of the node's kv store (and of the redis baseline)
constexpr int kValueBytes = 100;  // the size of each value

// What one run measured.
struct RunResult {
  double per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t completed = 0;
  double elapsed_s = 0;
  std::vector<uint32_t> latencies_us;
};

inline double Percentile(std::vector<uint32_t>& samples, double q) {
  if (samples.empty()) return 0;
  size_t k =
      std::min(samples.size() - 1, static_cast<size_t>(q * static_cast<double>(samples.size())));
  std::nth_element(samples.begin(), samples.begin() + static_cast<long>(k), samples.end());
  return samples[k] / 1000.0;
}

}  // namespace shardkit::bench
