// The change feeds of a node's stores in sys:stats (`shardkit stats`) and GET /metrics: per store
// its records, bytes, first retained and last sequence, and every consumer with its position and
// lag (docs/operations.md, "Metrics and health"). A store service puts its store in the node's
// directory under FeedKey(service name) while it runs.
#pragma once

#include <string>
#include <string_view>

#include "shardkit/services/registry.h"

namespace shardkit {
class JsonObject;
}  // namespace shardkit

namespace shardkit::services {

inline std::string FeedKey(std::string_view service) { return "feed/" + std::string(service); }

// Adds "feeds": {"<store>": {"records":…,"bytes":…,"first_retained":…,"last_sequence":…,
// "trimmed":…,"dropped_consumers":…,"consumers":[{"name":…,"position":…,"lag_records":…,
// "lag_ms":…}]}} when the node serves a store.
void AddFeedStats(const ServiceDirectory& directory, JsonObject& out);
// The same as Prometheus gauges and counters (shardkit_feed_*).
std::string FeedMetricsText(const ServiceDirectory& directory);

// The write health of a node's stores (docs/store.md, "A full disk"): {"<store>": {"writable":…,
// "cause":…,"refused_writes":…}}, empty when the node serves no store; `all_writable` false
// when one of them cannot write.
std::string StoreHealthJson(const ServiceDirectory& directory, bool& all_writable);
// The same as Prometheus gauges and counters (shardkit_store_writable, …).
std::string StoreHealthMetricsText(const ServiceDirectory& directory);

// A Prometheus label value, escaped.
std::string LabelValue(std::string_view text);

}  // namespace shardkit::services
