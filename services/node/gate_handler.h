// GateHandler: what stands between the bus and every handler a node routes to. It bounds the
// service's requests in flight (`overloaded` past `max_in_flight`) and counts outcomes per route
// pattern. The gate of a route to a service of this node also has a `trail_mark` ("<service>
// '<pattern>'"): it refuses a message whose causal chain already passed this very route (a route
// loop: `unavailable` naming it, at once) and adds its mark to the trail (Meta::via) of the
// messages the service sends on. A service sending to another of its own patterns is no loop.
//
// Thread-safety: Handle may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "shardkit/message/handler.h"
#include "shardkit/services/metrics.h"

namespace shardkit::services {

class GateHandler final : public Handler, public std::enable_shared_from_this<GateHandler> {
 public:
  GateHandler(std::shared_ptr<Handler> inner, std::string service,
              std::shared_ptr<QueueStats> queue, int64_t max_in_flight,
              std::shared_ptr<RouteStats> stats, std::string trail_mark = {})
      : inner_(std::move(inner)),
        service_(std::move(service)),
        queue_(std::move(queue)),
        max_in_flight_(max_in_flight),
        stats_(std::move(stats)),
        trail_mark_(std::move(trail_mark)) {}

  // "<service> '<pattern>'": the mark of a route to a service of this node.
  static std::string TrailMark(const std::string& service, const std::string& pattern) {
    return service + " '" + pattern + "'";
  }

  void Handle(Message message, const Context& context, ReplyFn reply) override;

 private:
  // Past the loop check: the bounded queue, then the inner handler.
  void Admitted(Message message, const Context& context, ReplyFn reply);

  std::shared_ptr<Handler> inner_;
  std::string service_;
  std::shared_ptr<QueueStats> queue_;  // null: unbounded (remote routes)
  int64_t max_in_flight_;
  std::shared_ptr<RouteStats> stats_;
  std::string trail_mark_;  // empty: not a service of this node (a remote route)
};

}  // namespace shardkit::services
