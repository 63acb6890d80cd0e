#include "node_stats.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "prometheus_text.h"
#include "shardkit/message/json.h"
#include "shardkit/store/entity_store.h"

namespace shardkit::services {
namespace {

// (store service name, its feed's stats), in the order the stores started.
std::vector<std::pair<std::string, store::FeedStats>> Feeds(const ServiceDirectory& directory) {
  std::vector<std::pair<std::string, store::FeedStats>> feeds;
  for (const auto& [name, store] : directory.FindAll<store::EntityStore>(FeedKey("")))
    feeds.emplace_back(name, store->feed().Stats());
  return feeds;
}

std::vector<std::pair<std::string, store::StorageHealth>> Healths(
    const ServiceDirectory& directory) {
  std::vector<std::pair<std::string, store::StorageHealth>> healths;
  for (const auto& [name, store] : directory.FindAll<store::EntityStore>(FeedKey("")))
    healths.emplace_back(name, store->Health());
  return healths;
}

}  // namespace

std::string StoreHealthJson(const ServiceDirectory& directory, bool& all_writable) {
  auto healths = Healths(directory);
  all_writable = true;
  if (healths.empty()) return {};
  JsonObject by_store;
  for (const auto& [name, health] : healths) {
    all_writable = all_writable && health.writable;
    by_store.Add(name, JsonObject()
                           .AddBool("writable", health.writable)
                           .Add("cause", health.cause)
                           .Add("refused_writes", health.refused_writes));
  }
  return by_store.str();
}

std::string StoreHealthMetricsText(const ServiceDirectory& directory) {
  auto healths = Healths(directory);
  if (healths.empty()) return {};
  std::string writable =
      "# HELP shardkit_store_writable 1 while a store can write, 0 while a disk fault (full, "
      "read-only) stops its writes.\n# TYPE shardkit_store_writable gauge\n";
  std::string refused =
      "# HELP shardkit_store_refused_writes_total Writes a store refused for a disk fault since it "
      "opened.\n# TYPE shardkit_store_refused_writes_total counter\n";
  for (const auto& [name, health] : healths) {
    writable += fmt::format("shardkit_store_writable{{store=\"{}\"}} {}\n", LabelValue(name),
                            health.writable ? 1 : 0);
    refused += fmt::format("shardkit_store_refused_writes_total{{store=\"{}\"}} {}\n",
                           LabelValue(name), health.refused_writes);
  }
  return writable + refused;
}

std::string LabelValue(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void AddFeedStats(const ServiceDirectory& directory, JsonObject& out) {
  auto feeds = Feeds(directory);
  if (feeds.empty()) return;
  JsonObject by_store;
  for (const auto& [name, stats] : feeds) {
    std::string consumers = "[";
    for (const store::FeedConsumerStats& c : stats.consumers) {
      if (consumers.size() > 1) consumers += ',';
      consumers += JsonObject()
                       .Add("name", c.name)
                       .Add("position", c.position)
                       .Add("lag_records", c.lag_records)
                       .Add("lag_ms", c.lag_ms)
                       .str();
    }
    consumers += ']';
    by_store.Add(name, JsonObject()
                           .Add("records", stats.records)
                           .Add("bytes", stats.bytes)
                           .Add("first_retained", stats.first_retained)
                           .Add("last_sequence", stats.last_sequence)
                           .Add("trimmed", stats.trimmed_total)
                           .Add("dropped_consumers", stats.dropped_consumers_total)
                           .AddRaw("consumers", consumers));
  }
  out.Add("feeds", by_store);
}

std::string FeedMetricsText(const ServiceDirectory& directory) {
  auto feeds = Feeds(directory);
  if (feeds.empty()) return {};
  using S = store::FeedStats;
  std::string out = MetricsText(
      "shardkit_feed_", "store", feeds,
      Metric{"records", "Change records a store's feed retains.", &S::records},
      Metric{"bytes", "Approximate bytes of the retained change records.", &S::bytes},
      Metric{"first_retained", "The oldest retained sequence number.", &S::first_retained},
      Metric{"last_sequence", "The feed's latest sequence number.", &S::last_sequence},
      Metric{"trimmed_total", "Change records trimmed since the store opened.", &S::trimmed_total},
      Metric{"dropped_consumers_total",
             "Consumers dropped for lagging beyond max_consumer_lag_ms since the store "
             "opened.",
             &S::dropped_consumers_total});
  out +=
      "# HELP shardkit_feed_consumer_position The next sequence a registered consumer needs.\n"
      "# TYPE shardkit_feed_consumer_position gauge\n"
      "# HELP shardkit_feed_consumer_lag_records Records from a consumer's position to the head.\n"
      "# TYPE shardkit_feed_consumer_lag_records gauge\n"
      "# HELP shardkit_feed_consumer_lag_seconds How long ago the record at a consumer's position "
      "was written.\n"
      "# TYPE shardkit_feed_consumer_lag_seconds gauge\n";
  for (const auto& [store, stats] : feeds) {
    for (const store::FeedConsumerStats& c : stats.consumers) {
      const std::string labels =
          fmt::format("store=\"{}\",consumer=\"{}\"", LabelValue(store), LabelValue(c.name));
      out += fmt::format("shardkit_feed_consumer_position{{{}}} {}\n", labels, c.position);
      out += fmt::format("shardkit_feed_consumer_lag_records{{{}}} {}\n", labels, c.lag_records);
      out += fmt::format("shardkit_feed_consumer_lag_seconds{{{}}} {}\n", labels,
                         static_cast<double>(c.lag_ms) / 1000);
    }
  }
  return out;
}

}  // namespace shardkit::services
