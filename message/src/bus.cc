#include "shardkit/message/bus.h"

#include <future>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace shardkit {
namespace {

class FunctionHandler final : public Handler {
 public:
  explicit FunctionHandler(AsyncHandlerFn fn) : fn_(std::move(fn)) {}
  void Handle(Message message, const Context& context, ReplyFn reply) override {
    fn_(std::move(message), context, std::move(reply));
  }

 private:
  AsyncHandlerFn fn_;
};

class SyncFunctionHandler final : public Handler {
 public:
  explicit SyncFunctionHandler(SyncHandlerFn fn) : fn_(std::move(fn)) {}
  void Handle(Message message, const Context& context, ReplyFn reply) override {
    reply(fn_(std::move(message), context));
  }

 private:
  SyncHandlerFn fn_;
};

std::string RandomPrefix() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

}  // namespace

std::shared_ptr<Handler> MakeHandler(AsyncHandlerFn fn) {
  return std::make_shared<FunctionHandler>(std::move(fn));
}

std::shared_ptr<Handler> MakeSyncHandler(SyncHandlerFn fn) {
  return std::make_shared<SyncFunctionHandler>(std::move(fn));
}

// --- Context
// --------------------------------------------------------------------------------------

void Context::Inherit(Message& child) const {
  Meta& meta = child.meta();
  if (meta.trace.empty()) meta.trace = origin_.trace;
  if (meta.parent.empty()) meta.parent = origin_.id;
  if (origin_.deadline != 0 && (meta.deadline == 0 || meta.deadline > origin_.deadline)) {
    meta.deadline = origin_.deadline;
  }
  if (meta.hops < origin_.hops) meta.hops = origin_.hops;
  meta.via = origin_.via;
  meta.id.clear();  // a child is a new message
}

void Context::Act(Message child, ReplyFn reply) const {
  Inherit(child);
  bus_->Act(std::move(child), std::move(reply));
}

void Context::Publish(Message child) const {
  Inherit(child);
  bus_->Publish(std::move(child));
}

bool Context::has_prior() const { return route_ && route_->prior; }

void Context::Prior(Message message, ReplyFn reply) const {
  if (!has_prior()) {
    reply(Status::NoRoute(
        fmt::format("'{}' has no prior handler", route_ ? route_->pattern.ToString() : "")));
    return;
  }
  bus_->Dispatch(route_->prior, std::move(message), std::move(reply), &origin_);
}

// --- Bus
// ------------------------------------------------------------------------------------------

Bus::Bus(BusOptions options)
    : options_(std::move(options)),
      id_prefix_(options_.id_prefix.empty() ? RandomPrefix() : options_.id_prefix),
      routes_(std::make_shared<const Router>()),
      observers_(std::make_shared<const std::vector<Observer>>()) {}

Bus::~Bus() = default;

std::string Bus::NewId() {
  // Hand-rolled hex: this runs once per message, and fmt's general machinery costs ~10x more.
  uint64_t n = next_id_.fetch_add(1, std::memory_order_relaxed);
  char digits[16];
  int len = 0;
  do {
    digits[len++] = "0123456789abcdef"[n & 15];
    n >>= 4;
  } while (n != 0);
  std::string id;
  id.reserve(id_prefix_.size() + 1 + len);
  id += id_prefix_;
  id += '-';
  while (len > 0) id += digits[--len];
  return id;
}

Status Bus::Update(const std::function<Status(Router&)>& change) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  auto next = std::make_shared<Router>(*routes_.load());
  Status status = change(*next);
  if (!status.ok()) return status;
  routes_.store(std::move(next));
  return Status::Ok();
}

void Bus::Replace(Router router) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  routes_.store(std::make_shared<const Router>(std::move(router)));
}

std::shared_ptr<const Router> Bus::routes() const { return routes_.load(); }

Status Bus::Add(std::string_view pattern, std::shared_ptr<Handler> handler,
                std::string description) {
  auto parsed = Pattern::Parse(pattern);
  if (!parsed.ok()) return parsed.status();
  return Update([&](Router& r) { return r.Add(std::move(parsed).value(), handler, description); });
}

Status Bus::Add(std::string_view pattern, AsyncHandlerFn fn, std::string description) {
  return Add(pattern, MakeHandler(std::move(fn)), std::move(description));
}

Status Bus::Override(std::string_view pattern, std::shared_ptr<Handler> handler,
                     std::string description) {
  auto parsed = Pattern::Parse(pattern);
  if (!parsed.ok()) return parsed.status();
  return Update(
      [&](Router& r) { return r.Override(std::move(parsed).value(), handler, description); });
}

Status Bus::Remove(std::string_view pattern) {
  auto parsed = Pattern::Parse(pattern);
  if (!parsed.ok()) return parsed.status();
  return Update([&](Router& r) { return r.Remove(*parsed); });
}

Result<uint64_t> Bus::Observe(std::string_view pattern, std::shared_ptr<Handler> handler) {
  auto parsed = Pattern::Parse(pattern);
  if (!parsed.ok()) return parsed.status();
  std::lock_guard<std::mutex> lock(write_mutex_);
  auto next = std::make_shared<std::vector<Observer>>(*observers_.load());
  uint64_t id = next_observer_id_++;
  auto route = std::make_shared<const Route>(
      Route{std::move(parsed).value(), std::move(handler), nullptr, "observer"});
  next->push_back(Observer{id, std::move(route)});
  observers_.store(std::move(next));
  return id;
}

Status Bus::Unobserve(uint64_t id) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  auto next = std::make_shared<std::vector<Observer>>(*observers_.load());
  auto it = std::find_if(next->begin(), next->end(), [&](const Observer& o) { return o.id == id; });
  if (it == next->end()) return Status::NotFound(fmt::format("no observer {}", id));
  next->erase(it);
  observers_.store(std::move(next));
  return Status::Ok();
}

Status Bus::Admit(Message& message) {
  Meta& meta = message.meta();
  if (meta.id.empty()) meta.id = NewId();
  if (meta.trace.empty()) meta.trace = meta.id;
  if (++meta.hops > options_.max_hops) {
    return Status::Invalid(fmt::format("hop limit of {} exceeded by '{}' (a routing loop?)",
                                       options_.max_hops, message.RoutingString()),
                           fmt::format("{{\"hops\":{}}}", meta.hops));
  }
  if (meta.deadline != 0 && options_.clock->NowMs() > meta.deadline) {
    return Status::Timeout(
        fmt::format("deadline passed before '{}' was handled", message.RoutingString()));
  }
  return Status::Ok();
}

void Bus::Act(Message message, ReplyFn reply) {
  Status admitted = Admit(message);
  if (!admitted.ok()) {
    reply(std::move(admitted));
    return;
  }
  std::shared_ptr<const Router> routes = routes_.load();
  const Route* route = routes->FindBorrowed(message);
  if (route == nullptr) {
    reply(Status::NoRoute(fmt::format("no handler for '{}'", message.RoutingString())));
    return;
  }
  reply.AnswerTo(message.meta().id);  // replies carry the request's id
  // The route is kept alive by the snapshot that holds it, whose reference the context takes.
  Dispatch(std::shared_ptr<const Route>(std::move(routes), route), std::move(message),
           std::move(reply));
}

void Bus::Dispatch(std::shared_ptr<const Route> route, Message&& message, ReplyFn&& reply,
                   const Meta* origin) {
  const Route& chosen = *route;  // kept alive by the context, which takes the reference count
  Context context(this, std::move(route), origin ? *origin : message.meta());
  try {
    chosen.handler->Handle(std::move(message), context, reply);
  } catch (const std::exception& e) {
    spdlog::error("handler for '{}' threw: {}", chosen.pattern.ToString(), e.what());
    reply(Status::Internal(
        fmt::format("handler for '{}' failed: {}", chosen.pattern.ToString(), e.what())));
  } catch (...) {
    spdlog::error("handler for '{}' threw a non-exception", chosen.pattern.ToString());
    reply(Status::Internal(fmt::format("handler for '{}' failed", chosen.pattern.ToString())));
  }
}

Result<Message> Bus::ActAndWait(Message message, std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<Message>>>();
  auto future = promise->get_future();
  Act(std::move(message),
      [promise](Result<Message> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(timeout) != std::future_status::ready) {
    return Status::Timeout(fmt::format("no reply within {} ms", timeout.count()));
  }
  return future.get();
}

size_t Bus::Publish(Message message) {
  Status admitted = Admit(message);
  if (!admitted.ok()) {
    spdlog::warn("published message refused: {}", admitted.ToString());
    return 0;
  }
  auto observers = observers_.load();
  size_t delivered = 0;
  for (const Observer& observer : *observers) {
    if (!observer.route->pattern.Matches(message)) continue;
    ++delivered;
    Dispatch(observer.route, Message(message), [route = observer.route](Result<Message> result) {
      if (!result.ok())
        spdlog::warn("observer '{}' failed: {}", route->pattern.ToString(),
                     result.status().ToString());
    });
  }
  return delivered;
}

}  // namespace shardkit
