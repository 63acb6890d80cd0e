// Parts shared by the in-process and the two-process halves of `shardkit bench cache`.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "shardkit/bench/bench.h"
#include "shardkit/message/message.h"

namespace shardkit::bench::cache_bench {

// Samples ranks 0..n-1 with P(k) proportional to 1/(k+1)^s.
class Zipf {
 public:
  Zipf(size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (size_t k = 0; k < n; ++k) cdf_[k] = (sum += 1.0 / std::pow(static_cast<double>(k + 1), s));
    for (double& c : cdf_) c /= sum;
  }
  size_t operator()(std::mt19937_64& rng) const {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return std::min<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin(),
                            cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

// The id of the entity of Zipf rank `rank` (scattered over the key space).
inline std::string IdOf(size_t rank) {
  return fmt::format("{:016x}", rank * 0x9E3779B97F4A7C15ull);
}

inline Message LoadOf(std::string_view id) {
  Message m;
  m.Reserve(3);  // the three properties without growing the list twice on the way
  m.SetString("store", "load").SetString("kind", "entry").SetString("id", id);
  return m;
}
inline Message Load(size_t rank) { return LoadOf(IdOf(rank)); }

// The value of `v` at quantile `p` (0 for none).
inline double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1)))];
}

// The cache in one `shardkit serve` process, the store in another, over TCP
// (cache_remote_bench.cc). `store_path` holds the entities (RocksDB, closed); the cache is given
// `cache_bytes`; the loads follow `keys` (the first options.warmup of them are the uncounted
// warm-up). remote_with_cache_per_s, remote_without_cache_per_s, remote_speedup,
// store_load_fraction, remote_hit_ratio, remote_with_cache_p50_us, remote_without_cache_p50_us,
// remote_with_cache_p99_us, remote_without_cache_p99_us, remote_hit_p50_us, remote_nocache_p50_us,
// remote_hit_vs_nocache_p50, stale_p50_ms, stale_p99_ms, stale_max_ms, stale_rounds, remote_errors
// (docs/performance.md, "Cache").
Figures RunRemote(const CacheBenchOptions& options, const std::vector<uint32_t>& keys,
                  const std::string& store_path, size_t cache_bytes);

}  // namespace shardkit::bench::cache_bench
