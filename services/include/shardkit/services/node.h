// Node: one shardkit process's runtime — its services, routing table and listeners, built from a
// NodeConfig (config.h) and changed at run time by reload.
//
// A request entering a listener: gets the listener's request timeout as its deadline if it has
// none; is stripped of internal properties on an external listener; goes through the node's Bus to
// the most specific route; the route's handler is the service (behind its bounded queue: past
// max_in_flight the answer is `overloaded` at once) or a client of a remote endpoint. A reply not
// ready by the deadline is answered `timeout` by the listener.
//
// System messages every node answers (internal listeners only):
//   sys:config,cmd:reload    reread the config file, rebuild and swap the routes (reply: routes)
//   sys:config,cmd:explain   with msg:{...}: where that message would go and why
//   sys:config,cmd:routes    the routing table
//   sys:stats                the metrics as JSON
//
// Reload builds and validates the whole new table first, then swaps it atomically; messages in
// flight finish on the old table; a bad config is refused with the reason and the old one stays.
// Listeners are not changed by reload (a changed listener list is refused: restart the node).
//
// Thread-safety: all methods are safe from any thread; Reload and Stop are serialised.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shardkit/message/bus.h"
#include "shardkit/message/status.h"
#include "shardkit/services/config.h"
#include "shardkit/services/metrics.h"
#include "shardkit/services/registry.h"
#include "shardkit/services/runtime.h"

namespace shardkit::services {

// How a node is hosted. The defaults are a `shardkit serve` process: it binds its listeners and
// reaches remote routes with network clients. An embedding (the testing cluster) may keep the
// node off the network and connect its remote routes itself.
struct NodeOptions {
  bool listen = true;  // false: no listener is bound; messages enter through bus()
  // Builds the handler of a [[route]] whose `to` is a URL; null: a tcp/http/inproc client.
  // An error refuses the config like a bad URL would.
  std::function<Result<std::shared_ptr<Handler>>(const RouteConfig&)> connect;
  // Clock (also the bus's), blocking-work executor and directory given to the services.
  ServiceEnvironment environment;
};

class Node {
 public:
  // Builds services and routes, binds the listeners and starts serving. Errors: a refused config
  // (`invalid`, naming file and key) or a listener that cannot bind (`unavailable`).
  static Result<std::unique_ptr<Node>> Start(NodeConfig config);
  static Result<std::unique_ptr<Node>> Start(NodeConfig config, NodeOptions options);
  // Stop() with no grace if still running.
  ~Node();

  // The listeners with their bound ports ("tcp://127.0.0.1:40123"), in config order.
  std::vector<std::string> listener_urls() const;
  const std::string& name() const;

  // Rereads the file the config came from and swaps in its routes.
  Status Reload();
  // Swaps in the routes of `next` (same validation as Start).
  Status Reload(NodeConfig next);

  // Graceful stop: stop accepting, let in-flight requests finish for up to `grace`, close
  // connections, stop services, stop the I/O threads. Idempotent.
  void Stop(std::chrono::milliseconds grace);
  // Stop with the config's stop_grace_ms.
  void Stop();

  Bus& bus();
  IoRuntime& runtime();
  Metrics& metrics();

  class Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardkit::services
