// Small statistics over a bench's repeated measurements.
#pragma once

#include <algorithm>
#include <vector>

namespace shardkit::bench {

// The median of `v` (the mean of the two middle values when there is an even number); 0 for none.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return (v[(n - 1) / 2] + v[n / 2]) / 2;
}

}  // namespace shardkit::bench
