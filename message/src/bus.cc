#include "shardkit/message/bus.h"

#include <algorithm>
#include <future>
#include <random>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "shardkit/message/thread_slots.h"

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

std::atomic<uint64_t> next_bus_serial{1};

// How many ids a thread takes from its bus's counter at a time.
constexpr uint64_t kIdBlock = 256;

// An id's digits: letters and numbers, which JSON, HTTP headers and log lines carry unescaped.
// Base 62 keeps ids short: a 6-digit prefix, a '-' and a counter of up to 8 digits (2·10^14
// messages) fit std::string's 15 bytes held in place, so making an id and the reply callback's
// copy of it allocate nothing. (In hex, a bus's ids outgrew them after 16.7 million messages.)
constexpr std::string_view kIdDigits =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr int kPrefixDigits = 6;

// Writes `n` in kIdDigits, least significant first, into `out` (room for 11); returns the count.
int IdDigits(uint64_t n, char* out) {
  int len = 0;
  do {
    out[len++] = kIdDigits[n % kIdDigits.size()];
    n /= kIdDigits.size();
  } while (n != 0);
  return len;
}

// kPrefixDigits random digits (about 36 bits): buses of different processes rarely share one.
std::string RandomPrefix() {
  std::random_device rd;
  const uint64_t r = (uint64_t{rd()} << 32) | rd();
  char digits[11];
  const int len = IdDigits(r, digits);
  return std::string(digits, std::min(len, kPrefixDigits));
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
  const Meta& origin = *origin_;
  if (meta.trace.empty()) meta.trace = origin.trace;
  if (meta.parent.empty()) meta.parent = origin.id;
  if (origin.deadline != 0 && (meta.deadline == 0 || meta.deadline > origin.deadline)) {
    meta.deadline = origin.deadline;
  }
  if (meta.hops < origin.hops) meta.hops = origin.hops;
  CopyTrail(meta.via);
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
  // The prior is owned by this route: a reference to the route (its own count, or its table's
  // per-thread one) keeps it alive without a count on the prior, which every thread that misses
  // in a cache in front of one store would write.
  const Route* prior = route_->prior.get();
  // The prior's context carries the trail with this context's pending mark, if any.
  const MetaRef marked = mark_ != nullptr ? MetaRef(Trailed()) : MetaRef();
  bus_->Dispatch(std::shared_ptr<const Route>(route_, prior), std::move(message), std::move(reply),
                 mark_ != nullptr ? &marked : &origin_);
}

// --- Bus
// ------------------------------------------------------------------------------------------

// Every Act needs a reference to the routing table: read from per-thread slots (SnapshotSlots),
// not from one atomic shared_ptr, whose lock word and count every acting thread would write.
struct Bus::ReaderSlots : SnapshotSlots<Router> {
  using SnapshotSlots<Router>::SnapshotSlots;
};

Bus::Bus(BusOptions options)
    : options_(std::move(options)),
      serial_(next_bus_serial.fetch_add(1, std::memory_order_relaxed)),
      id_prefix_(options_.id_prefix.empty() ? RandomPrefix() : options_.id_prefix),
      reader_slots_(std::make_unique<ReaderSlots>(std::make_shared<const Router>())),
      observers_(std::make_shared<const std::vector<Observer>>()) {}

Bus::~Bus() = default;

std::string Bus::NewId() {
  // Ids come from per-thread blocks of the bus's counter: one shared counter written by every
  // message is a cache line passed between the cores of threads acting at once.
  struct Block {
    uint64_t bus = 0, next = 0, end = 0;
  };
  thread_local Block block;
  if (block.bus != serial_ || block.next == block.end) {
    block.next = next_id_.fetch_add(kIdBlock, std::memory_order_relaxed);
    block.end = block.next + kIdBlock;
    block.bus = serial_;
  }
  // Hand-rolled: this runs once per message, and fmt's general machinery costs ~10x more.
  char digits[11];
  int len = IdDigits(block.next++, digits);
  // Sized once and written in place: appended a character at a time, each append checked the
  // string's room.
  std::string id(id_prefix_.size() + 1 + len, '-');
  char* out = std::copy(id_prefix_.begin(), id_prefix_.end(), id.data()) + 1;  // past the '-'
  while (len > 0) *out++ = digits[--len];
  return id;
}

Status Bus::Update(const std::function<Status(Router&)>& change) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  auto next = std::make_shared<Router>(*reader_slots_->Load());
  Status status = change(*next);
  if (!status.ok()) return status;
  reader_slots_->Publish(next);
  return Status::Ok();
}

void Bus::Replace(Router router) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  reader_slots_->Publish(std::make_shared<const Router>(std::move(router)));
}

std::shared_ptr<const Router> Bus::routes() const { return reader_slots_->Load(); }

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
  std::shared_ptr<const Router> routes = reader_slots_->Load();
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
                   const MetaRef* origin) {
  const Route& chosen = *route;  // kept alive by the context, which takes the reference count
  Context context(Context::Sharing{}, this, std::move(route),
                  origin ? *origin : message.ShareMeta());
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
