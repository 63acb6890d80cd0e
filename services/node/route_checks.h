// Checks of a whole routing table that no single route can fail: messages that a forwarder passes
// on, marked for the service behind it, must reach that service.
//
// A cache forwards what it takes with `cache:true`, a shard router with `shard:<name>`, an
// applier with `cqrs:apply`. A route carrying such a mark (`store:*,kind:*,shard:"80-"`) exists to
// take those messages; when another route wins for them instead (a cache routed per operation,
// `store:load,kind:entry`, is more specific than the shard's route for a load), the forwarded
// message goes back to a forwarder: a route loop. The node answers such a message `unavailable`
// at run time (node.cc); these warnings point the configuration out beforehand, on start and
// reload, and in `shardkit explain`.
#pragma once

#include <string>
#include <vector>

#include "shardkit/message/router.h"

namespace shardkit::services {

// One sentence per marked route that loses a forwarded message to another route, naming both and
// an example message. Empty when none does.
std::vector<std::string> ForwardingLoopWarnings(const Router& router);

}  // namespace shardkit::services
