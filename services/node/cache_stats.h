// The entry caches of a node in sys:stats (`shardkit stats`) and GET /metrics: per cache its hits,
// misses, hit ratio, evictions, bytes and entries (docs/operations.md, "Metrics and health"). A
// cache service puts its cache in the node's directory under CacheKey(service name) while it runs.
#pragma once

#include <string>
#include <string_view>

#include "shardkit/services/registry.h"

namespace shardkit {
class JsonObject;
}  // namespace shardkit

namespace shardkit::services {

inline std::string CacheKey(std::string_view service) { return "cache/" + std::string(service); }

// Adds "caches": {"<cache>": {"hits":…,"misses":…,"hit_ratio":…,"evictions":…,"bytes":…,
// "entries":…,"invalidations":…}} when the node runs a cache.
void AddCacheStats(const ServiceDirectory& directory, JsonObject& out);
// The same as Prometheus counters and gauges (shardkit_cache_*).
std::string CacheMetricsText(const ServiceDirectory& directory);

}  // namespace shardkit::services
