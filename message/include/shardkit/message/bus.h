// Bus: the in-process transport. Request/response (Act) through the Router to the one most specific
// handler, and fire-and-forget Publish to every matching observer (the sidewinder pattern of *The
// Tao of Microservices*).
//
// On every Act the bus: gives the message an id if it has none and starts a trace; counts a hop
// and refuses a message past the hop limit (loops die quickly, with an error, not silently);
// answers `timeout` for a message whose meta$.deadline has passed; answers `no_route` (never
// `not_found`: nothing is known about the data) naming the routing properties when no pattern
// matches; turns a handler's exception into an `internal`
// error. Replies carry the request's id in meta$.id.
//
// Routing changes are atomic: each change builds a new Router and swaps it in; messages already
// dispatched finish on the table they started with.
//
// Thread-safety: all methods are safe to call from any thread. Handlers run on the caller's
// thread; a handler that replies later replies on whatever thread it likes.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shardkit/message/clock.h"
#include "shardkit/message/handler.h"
#include "shardkit/message/router.h"

namespace shardkit {

struct BusOptions {
  const Clock* clock = &SystemClock::Default();
  int max_hops = 32;
  // Prefix of generated message ids; empty: a random one per bus.
  std::string id_prefix;
};

class Bus {
 public:
  explicit Bus(BusOptions options = {});
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // --- Routing (each is one atomic table swap) ------------------------------------------------
  // `pattern` in the notation of pattern.h. Errors: `invalid` pattern, `conflict` duplicate.
  Status Add(std::string_view pattern, std::shared_ptr<Handler> handler,
             std::string description = {});
  Status Add(std::string_view pattern, AsyncHandlerFn fn, std::string description = {});
  Status Override(std::string_view pattern, std::shared_ptr<Handler> handler,
                  std::string description = {});
  Status Remove(std::string_view pattern);
  // Applies several changes at once: `change` edits a copy of the table; the copy is swapped in
  // only if `change` returns OK, so a failed batch changes nothing.
  Status Update(const std::function<Status(Router&)>& change);
  // Replaces the whole table.
  void Replace(Router router);
  // The current table (an immutable snapshot).
  std::shared_ptr<const Router> routes() const;

  // --- Observers ------------------------------------------------------------------------------
  // Every observer whose pattern matches a published message receives it; several observers may
  // share one pattern. Returns an id for Unobserve.
  Result<uint64_t> Observe(std::string_view pattern, std::shared_ptr<Handler> handler);
  Status Unobserve(uint64_t id);

  // --- Messages -------------------------------------------------------------------------------
  // Request/response: `reply` is called exactly once.
  void Act(Message message, ReplyFn reply);
  // Blocks until the reply arrives or `timeout` passes (then `timeout`). For tests, tools and
  // start-up code — never on an I/O thread.
  Result<Message> ActAndWait(Message message,
                             std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Fire-and-forget: delivered to every matching observer, now, on this thread. Observers' replies
  // are discarded (errors are logged). Returns how many observers received it.
  size_t Publish(Message message);

  // A new unique message id ("<prefix>-<counter in hex>"). Each thread takes its counters in
  // blocks, so ids are unique but not in the order they were made across threads.
  std::string NewId();
  const Clock& clock() const { return *options_.clock; }

 private:
  friend class Context;
  // Dispatch to `route` (already chosen), with exception safety. `origin`: the handled message's
  // metadata when `route` is a prior (Context::Prior keeps the causal chain and its trail); else
  // the context shares `message`'s.
  void Dispatch(std::shared_ptr<const Route> route, Message&& message, ReplyFn&& reply,
                const MetaRef* origin = nullptr);
  // Prepares meta$ and checks hop/deadline limits; an error means "reply with it, do not route".
  Status Admit(Message& message);

  BusOptions options_;
  const uint64_t serial_;  // unique per bus in the process: tells NewId's per-thread blocks apart
  std::atomic<uint64_t> next_id_{1};
  std::string id_prefix_;

  mutable std::mutex write_mutex_;  // serialises routing and observer changes
  // The routing table, held once per thread slot, each copy with its own reference count
  // (bus.cc): an Act takes its reference from its own slot, not from one line every thread writes.
  struct ReaderSlots;
  std::unique_ptr<ReaderSlots> reader_slots_;

  struct Observer {
    uint64_t id;
    std::shared_ptr<const Route> route;
  };
  std::atomic<std::shared_ptr<const std::vector<Observer>>> observers_;
  uint64_t next_observer_id_ = 1;  // guarded by write_mutex_
};

}  // namespace shardkit
