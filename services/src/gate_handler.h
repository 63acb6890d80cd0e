// GateHandler: what stands between the bus and every handler a node routes to. It bounds the
// service's requests in flight (`overloaded` past `max_in_flight`), counts outcomes per route
// pattern, and, for a service of this node (`local`), refuses a message that the service already
// forwarded (a route loop: `unavailable` naming it, at once) and marks the messages the service
// sends on as forwarded by it (Meta::via).
//
// Thread-safety: Handle may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "shardkit/message/handler.h"
#include "shardkit/services/metrics.h"

namespace shardkit::services {

class GateHandler final : public Handler {
 public:
  GateHandler(std::shared_ptr<Handler> inner, std::string service,
              std::shared_ptr<QueueStats> queue, int64_t max_in_flight,
              std::shared_ptr<RouteStats> stats, bool local = false)
      : inner_(std::move(inner)),
        service_(std::move(service)),
        queue_(std::move(queue)),
        max_in_flight_(max_in_flight),
        stats_(std::move(stats)),
        local_(local) {}

  void Handle(Message message, const Context& context, ReplyFn reply) override;

 private:
  // Past the loop check: the bounded queue, then the inner handler.
  void Admitted(Message message, const Context& context, ReplyFn reply);

  std::shared_ptr<Handler> inner_;
  std::string service_;
  std::shared_ptr<QueueStats> queue_;  // null: unbounded (remote routes)
  int64_t max_in_flight_;
  std::shared_ptr<RouteStats> stats_;
  bool local_;
};

}  // namespace shardkit::services
