#include "gate_handler.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "shardkit/message/json.h"

namespace shardkit::services {
namespace {

// `unavailable` naming the loop: `message` reached the route `mark` again along `via`.
Status RouteLoop(const Message& message, const std::string& mark,
                 const std::vector<std::string>& via) {
  std::string details = JsonObject().AddRaw("loop", JsonStringArray(via)).str();
  return Status::Unavailable(
      fmt::format("route loop: '{}' would go back to service {} (forwarded by {}); no other "
                  "route takes it: check the patterns (shardkit explain)",
                  message.RoutingString(), mark, fmt::join(via, " -> ")),
      std::move(details));
}

}  // namespace

void GateHandler::Handle(Message message, const Context& context, ReplyFn reply) {
  if (!trail_mark_.empty()) {
    const std::vector<std::string>& via = context.origin().via;
    if (std::find(via.begin(), via.end(), trail_mark_) != via.end()) {
      stats_->Count(Code::kUnavailable);
      reply(RouteLoop(message, trail_mark_, via));
      return;
    }
    Admitted(std::move(message), context.Via(trail_mark_), std::move(reply));
    return;
  }
  Admitted(std::move(message), context, std::move(reply));
}

void GateHandler::Admitted(Message message, const Context& context, ReplyFn reply) {
  if (queue_ && queue_->depth.fetch_add(1, std::memory_order_acq_rel) >= max_in_flight_) {
    queue_->depth.fetch_sub(1, std::memory_order_acq_rel);
    stats_->Count(Code::kOverloaded);
    reply(Status::Overloaded(
        fmt::format("service '{}' has {} requests in flight (its max_in_flight); retry later",
                    service_, max_in_flight_)));
    return;
  }
  // One reference, to this gate (which holds the queue and the counters), not one to each: every
  // request's reference count is written by whichever I/O thread takes it and the one that
  // answers it.
  auto done = [self = shared_from_this(), start = std::chrono::steady_clock::now(),
               reply = std::move(reply)](Result<Message> result) {
    if (self->queue_) self->queue_->depth.fetch_sub(1, std::memory_order_acq_rel);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    self->stats_->Count(result.ok() ? Code::kOk : result.status().code(), micros.count());
    reply(std::move(result));
  };
  try {
    inner_->Handle(std::move(message), context, std::move(done));
  } catch (...) {
    if (queue_) queue_->depth.fetch_sub(1, std::memory_order_acq_rel);
    stats_->Count(Code::kInternal);
    throw;  // the bus turns it into an `internal` reply
  }
}

}  // namespace shardkit::services
