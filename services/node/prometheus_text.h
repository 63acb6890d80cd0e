// Prometheus text for a node's figures (GET /metrics): escaping and metric families over
// per-item stats (each store's feed, each cache).
#pragma once

#include <fmt/format.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardkit::services {

// A Prometheus label value, escaped.
std::string LabelValue(std::string_view text);

// One Prometheus metric family over per-item stats: its name after the prefix, its help, and its
// value, a member of the stats or a function of them (called with std::invoke). A name ending in
// "_total" is a counter, any other a gauge (Prometheus's naming convention).
template <typename Value>
struct Metric {
  const char* name;
  const char* help;
  Value value;
};
// Clang 14 does not deduce an aggregate's template arguments from its initialiser yet.
template <typename Value>
Metric(const char*, const char*, Value) -> Metric<Value>;

// For each metric its HELP and TYPE lines, then one sample per item labelled
// `<label>="<item name>"`; empty when there are no items.
template <typename Stats, typename... Values>
std::string MetricsText(std::string_view prefix, std::string_view label,
                        const std::vector<std::pair<std::string, Stats>>& items,
                        const Metric<Values>&... metrics) {
  std::string out;
  if (items.empty()) return out;
  auto append = [&](const auto& metric) {
    const std::string name = fmt::format("{}{}", prefix, metric.name);
    const char* type = name.ends_with("_total") ? "counter" : "gauge";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, metric.help, name, type);
    for (const auto& [item, stats] : items) {
      out += fmt::format("{}{{{}=\"{}\"}} {}\n", name, label, LabelValue(item),
                         std::invoke(metric.value, stats));
    }
  };
  (append(metrics), ...);
  return out;
}

}  // namespace shardkit::services
