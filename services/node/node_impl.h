// Internal to services/node: Node's implementation, shared by node.cc (start, reload, stop),
// node_table.cc (building and swapping the routing table) and node_system.cc (sys:* routes).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster.h"
#include "console.h"
#include "shardkit/message/bus.h"
#include "shardkit/services/metrics.h"
#include "shardkit/services/node.h"
#include "shardkit/services/registry.h"
#include "wire.h"

namespace shardkit::services {

class Node::Impl {
 public:
  Impl(NodeConfig config, NodeOptions options);

  ~Impl() { Stop(std::chrono::milliseconds(0)); }

  struct LiveService {
    std::string type;
    std::string fingerprint;  // type + settings: unchanged means the instance is kept on reload
    ServiceInstance instance;
  };
  // A service a reload replaced or removed, and when: requests that took the old table may still
  // run in it. One without a worker is stopped (its store closed) by the first reload after
  // stop_grace_ms (StopRetired); the rest at node stop.
  struct Retired {
    ServiceInstance instance;
    std::chrono::steady_clock::time_point at;
  };
  // A routing table being built by Install: swapped in whole, or dropped (and the services built
  // for it stopped) when anything in it is invalid.
  struct Table {
    Router router;
    Router local_router;  // this node's services only (fire-and-forget from other nodes)
    std::map<std::string, LiveService> services;
    std::vector<std::string> created;  // names built for this table: stopped if it fails
    std::map<std::string, std::shared_ptr<Handler>> clients;
    std::vector<std::string> served;                  // patterns routed to this node's own services
    std::map<std::string, std::string> decorator_of;  // decorated service -> its decorator
    void StopCreated();
  };

  // Builds the table of `next` (services, routes, cluster and system routes) and swaps it in.
  Status Install(const NodeConfig& next);
  Result<LiveService> BuildService(const NodeConfig& next, const ServiceConfig& service,
                                   Table& table);
  Status AddServices(const NodeConfig& next, Table& table);
  Status CheckDecorators(const NodeConfig& next, Table& table);
  // Routes `pattern` to service `name`: its handler, its own overrides, then its decorator's.
  Status AddStack(const NodeConfig& next, Table& table, const std::string& name,
                  const Pattern& pattern);
  Status AddRoutes(const NodeConfig& next, Table& table);
  Result<std::shared_ptr<Handler>> RouteClient(const NodeConfig& next, size_t i,
                                               const std::string& key);
  void Commit(const NodeConfig& next, Table table);
  // Stops the retired services without a worker that were retired before `before`; call with
  // mutex_ held.
  void StopRetired(std::chrono::steady_clock::time_point before);
  Status StartListeners();
  Status Reload(NodeConfig next);
  Status ReloadFromFile();
  void Stop(std::chrono::milliseconds grace);
  void DrainServices();  // each service's `drain`, as the node stops taking requests

  void Dispatch(Message message, ReplyFn reply);
  Status StartCluster();
  void AddClusterRoutes(const NodeConfig& next, Router& router,
                        std::map<std::string, std::shared_ptr<Handler>>& clients);
  void RebuildClusterRoutes();
  void AddSystemRoutes(Router& router);
  Result<Message> Explain(const Message& request) const;
  Message ListRoutes() const;
  // The web console (node_console.cc): built when an http:// listener serves it; sets
  // hooks.console.
  void StartConsole(ListenerHooks& hooks);
  std::optional<std::vector<ConsoleService>> ConsoleServices();
  std::string ConsoleCluster(const std::string& self) const;  // "" when the node runs alone

  NodeConfig config_;  // guarded by mutex_ after start
  const NodeOptions options_;
  std::unique_ptr<IoRuntime> runtime_;  // first: destroyed last
  std::shared_ptr<Metrics> metrics_;
  // Connections the listeners refused or dropped (listener_limits.h), for GET /metrics.
  std::shared_ptr<ListenerCounters> counters_ = std::make_shared<ListenerCounters>();
  Bus bus_;
  Bus local_bus_;                                            // the services of this node only
  std::mutex mutex_;                                         // serialises Reload and Stop
  std::map<std::string, LiveService> services_;              // guarded by mutex_
  std::vector<Retired> retired_;                             // guarded by mutex_
  std::map<std::string, std::shared_ptr<Handler>> clients_;  // guarded by mutex_
  std::vector<std::string> served_;                          // guarded by mutex_
  // The current table's route-loop warnings (route_checks.h); replaced with the table.
  std::atomic<std::shared_ptr<const std::vector<std::string>>> warnings_{
      std::make_shared<const std::vector<std::string>>()};
  std::unique_ptr<ClusterAgent> cluster_;  // null: the node runs alone
  std::unique_ptr<Listener> cluster_listener_;
  std::shared_ptr<Console> console_;  // null: no listener serves the console
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::string> urls_;
  // The operations the current table's services declare (access.h), read for every request:
  // a plain pointer, replaced with the table; every list stays alive until the node is destroyed
  // (a few per reload), so a reader never sees a freed one.
  std::atomic<const std::vector<Pattern>*> operations_{nullptr};
  std::vector<std::unique_ptr<const std::vector<Pattern>>> operation_lists_;  // guarded by mutex_
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;  // guarded by mutex_
};

}  // namespace shardkit::services
