// The microblog node service types: settings in, handlers out (services.h; docs/configuration.md).
#include <fmt/format.h>

#include <mutex>

#include <shardkit/services/client.h>
#include <shardkit/services/endpoint.h>
#include <shardkit/services/registry.h>

#include "microblog/projections.h"
#include "microblog/services.h"

namespace microblog {
namespace {

using shardkit::Result;
using shardkit::Status;
using shardkit::services::ServiceContext;
using shardkit::services::ServiceInstance;
using shardkit::services::Settings;

// The Limits keys every content service accepts.
Result<Limits> LimitsFrom(const Settings& s) {
  Limits limits;
  auto text = s.GetInt("max_text_bytes", static_cast<int64_t>(limits.max_text_bytes));
  if (!text.ok()) return text.status();
  auto page = s.GetInt("default_page", limits.default_page);
  if (!page.ok()) return page.status();
  auto max_page = s.GetInt("max_page", limits.max_page);
  if (!max_page.ok()) return max_page.status();
  auto followers = s.GetInt("max_followers", limits.max_followers);
  if (!followers.ok()) return followers.status();
  if (*text < 1) return s.Error("max_text_bytes", "must be positive");
  if (*max_page < 1 || *max_page > 10'000) return s.Error("max_page", "must be 1..10000");
  if (*page < 1 || *page > *max_page) return s.Error("default_page", "must be 1..max_page");
  if (*followers < 1) return s.Error("max_followers", "must be positive");
  limits.max_text_bytes = static_cast<size_t>(*text);
  limits.default_page = static_cast<int>(*page);
  limits.max_page = static_cast<int>(*max_page);
  limits.max_followers = static_cast<int>(*followers);
  return limits;
}

using Maker = std::shared_ptr<shardkit::Handler> (*)(Limits);

shardkit::services::ServiceFactory WithLimits(Maker make, std::vector<std::string> patterns) {
  return [make, patterns](const ServiceContext& ctx) -> Result<ServiceInstance> {
    if (Status st =
            ctx.settings.CheckOnly({"max_text_bytes", "default_page", "max_page", "max_followers"});
        !st.ok())
      return st;
    auto limits = LimitsFrom(ctx.settings);
    if (!limits.ok()) return limits.status();
    return ServiceInstance{make(*limits), patterns, nullptr};
  };
}

// broadcast: `to` = URLs of the subscribers; `timeout_ms` per delivery; patterns from the config.
Result<ServiceInstance> MakeBroadcast(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"to", "timeout_ms", "connections"}); !st.ok()) return st;
  auto to = s.GetStringList("to");
  if (!to.ok()) return to.status();
  auto timeout = s.GetInt("timeout_ms", 5'000);
  if (!timeout.ok()) return timeout.status();
  auto connections = s.GetInt("connections", 2);
  if (!connections.ok()) return connections.status();
  if (*timeout < 1) return s.Error("timeout_ms", "must be positive");
  if (*connections < 1 || *connections > 64) return s.Error("connections", "must be 1..64");
  std::vector<Subscriber> subscribers;
  for (const std::string& url : *to) {
    auto endpoint = shardkit::services::ParseEndpoint(url);
    if (!endpoint.ok()) return s.Error("to", endpoint.status().message());
    shardkit::services::ClientOptions options;
    options.timeout = std::chrono::milliseconds(*timeout);
    options.connections = static_cast<int>(*connections);
    auto client = shardkit::services::MakeClient(ctx.runtime, *endpoint, options);
    if (!client.ok()) return s.Error("to", client.status().message());
    subscribers.push_back({url, *client});
  }
  // No default patterns: what it broadcasts is the config's choice (patterns = ["info:entry"]).
  return ServiceInstance{MakeBroadcastService(std::move(subscribers)), {}, nullptr};
}

}  // namespace

void RegisterMicroblogServices() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& registry = shardkit::services::ServiceRegistry::Global();
    (void)registry.Register("microblog.post", WithLimits(MakePostService, {"post:entry"}));
    (void)registry.Register("microblog.index",
                            WithLimits(MakeIndexService, {"info:entry", "search:*"}));
    (void)registry.Register("microblog.follow", WithLimits(MakeFollowService, {"follow:*"}));
    (void)registry.Register("microblog.timeline", WithLimits(MakeTimelineService, {"timeline:*"}));
    (void)registry.Register("microblog.fanout",
                            [](const ServiceContext& ctx) -> Result<ServiceInstance> {
                              if (Status st = ctx.settings.CheckOnly({}); !st.ok()) return st;
                              return ServiceInstance{MakeFanoutService(), {"info:entry"}, nullptr};
                            });
    (void)registry.Register("microblog.broadcast", MakeBroadcast);
  });
  RegisterMicroblogProjections();
}

}  // namespace microblog
