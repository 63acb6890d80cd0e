// What a node's stores and caches report in sys:stats (`shardkit stats`) and GET /metrics
// (docs/operations.md, "Metrics and health"). A store service puts its store in the node's
// directory under FeedKey(service name) while it runs, a cache service its cache under
// CacheKey(service name).
#pragma once

#include <string>
#include <string_view>

#include "shardkit/services/registry.h"

namespace shardkit {
class JsonObject;
}  // namespace shardkit

namespace shardkit::services {

inline std::string FeedKey(std::string_view service) { return "feed/" + std::string(service); }
inline std::string CacheKey(std::string_view service) { return "cache/" + std::string(service); }

// Adds "feeds": {"<store>": {"records":…,"bytes":…,"first_retained":…,"last_sequence":…,
// "trimmed":…,"dropped_consumers":…,"consumers":[{"name":…,"position":…,"lag_records":…,
// "lag_ms":…}]}} when the node serves a store, and "caches": {"<cache>": {"hits":…,"misses":…,
// "hit_ratio":…,"evictions":…,"bytes":…,"entries":…,"invalidations":…}} when it runs a cache.
void AddFeedStats(const ServiceDirectory& directory, JsonObject& out);
void AddCacheStats(const ServiceDirectory& directory, JsonObject& out);
// The same as Prometheus gauges and counters (shardkit_feed_*, shardkit_cache_*).
std::string FeedMetricsText(const ServiceDirectory& directory);
std::string CacheMetricsText(const ServiceDirectory& directory);

// The write health of a node's stores (docs/store.md, "A full disk"): {"<store>": {"writable":…,
// "cause":…,"refused_writes":…}}, empty when the node serves no store; `all_writable` false
// when one of them cannot write.
std::string StoreHealthJson(const ServiceDirectory& directory, bool& all_writable);
// The same as Prometheus gauges and counters (shardkit_store_writable, …).
std::string StoreHealthMetricsText(const ServiceDirectory& directory);

}  // namespace shardkit::services
