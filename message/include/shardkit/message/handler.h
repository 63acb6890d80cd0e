// Handler: the one narrow interface every service implements — a message in, a reply or an error
// out, asynchronously.
//
// Stores, shard routers, caches, CQRS command services, migrations and test fakes are all Handlers.
// A decorator (a cache, a shard guard) is a Handler installed as an override of the routes it
// decorates; it reaches the handler it replaced with Context::Prior (docs/architecture.md,
// "Composing a decorator").
//
// Contract: Handle calls `reply` exactly once, from any thread, before or after Handle returns.
// A handler that throws must not have called `reply`; the bus turns the exception into an
// `internal` error reply. Handle must not block an I/O thread: slow work (disk) goes to a pool.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shardkit/message/message.h"
#include "shardkit/message/reply_fn.h"
#include "shardkit/message/status.h"

namespace shardkit {

class Bus;
struct Route;

// What a handler knows besides the message: the route that chose it and the bus, to send further
// messages as part of the same causal chain.
class Context {
 public:
  // Holds a copy of `origin`. The bus makes its contexts with the dispatched message's own
  // Meta, shared (Message::ShareMeta), so a dispatch copies none of its strings.
  Context(Bus* bus, std::shared_ptr<const Route> route, const Meta& origin)
      : bus_(bus), route_(std::move(route)), origin_(origin) {}

  // Sends `child` through the bus as a consequence of the message being handled: it inherits the
  // trace and the deadline, and its parent is the handled message's id.
  void Act(Message child, ReplyFn reply) const;
  // Fire-and-forget to every observer (see Bus::Publish), in the same causal chain.
  void Publish(Message child) const;
  // Calls the handler this route overrode, with the same context; replies `no_route` when there
  // is none. This is how a cache reaches the store it sits in front of.
  void Prior(Message message, ReplyFn reply) const;
  bool has_prior() const;

  Bus* bus() const { return bus_; }
  const Route* route() const { return route_.get(); }
  // The metadata of the message being handled.
  const Meta& origin() const { return *origin_; }
  // This context with `mark` after origin().via: the messages a handler sends through it carry
  // the mark in their trail (Meta::via). The mark is not copied until such a message is sent (a
  // request whose handler sends none pays no allocation for it), so it must live as long as this
  // context and its copies do: a gate's own mark, the gate kept alive by the route the context
  // holds. origin().via does not show it.
  Context Via(const std::string& mark) const {
    Context out = *this;
    if (mark_ != nullptr) out.origin_ = MetaRef(Trailed());
    out.mark_ = &mark;
    return out;
  }
  Context Via(std::string&&) const = delete;  // a temporary mark would die before its use

 private:
  friend class Bus;
  struct Sharing {};  // tells the bus's constructor from the public one (`{}` reads as either)
  Context(Sharing, Bus* bus, std::shared_ptr<const Route> route, MetaRef origin)
      : bus_(bus), route_(std::move(route)), origin_(std::move(origin)) {}

  void Inherit(Message& child) const;
  // Sets `via` to this context's trail: origin().via, then the pending mark if there is one.
  void CopyTrail(std::vector<std::string>& via) const {
    via = origin_->via;
    if (mark_ != nullptr) via.push_back(*mark_);
  }
  // origin() with the pending mark after its trail.
  Meta Trailed() const {
    Meta out = *origin_;
    CopyTrail(out.via);
    return out;
  }

  Bus* bus_;
  std::shared_ptr<const Route> route_;
  MetaRef origin_;                     // shared with the dispatched message, never written
  const std::string* mark_ = nullptr;  // a trail mark that follows origin_.via (Via)
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void Handle(Message message, const Context& context, ReplyFn reply) = 0;
};

// Adapters for handlers written as functions.
using AsyncHandlerFn = std::function<void(Message, const Context&, ReplyFn)>;
using SyncHandlerFn = std::function<Result<Message>(Message, const Context&)>;
std::shared_ptr<Handler> MakeHandler(AsyncHandlerFn fn);
std::shared_ptr<Handler> MakeSyncHandler(SyncHandlerFn fn);

}  // namespace shardkit
