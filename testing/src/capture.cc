// MessageCapture: an observer for publishes, wrappers around the routes present at construction,
// and a per-bus registry that the testing library's own handlers report requests to.
#include <shardkit/testing/capture.h>

#include <map>

#include <shardkit/message/codec.h>
#include <shardkit/message/pattern.h>
#include <shardkit/testing/messages.h>

namespace shardkit::testing {

struct MessageCapture::State {
  mutable std::mutex mu;
  std::vector<CapturedMessage> entries;  // guarded by mu

  void Add(CapturedMessage::Kind kind, const Message& message) {
    std::lock_guard<std::mutex> lock(mu);
    entries.push_back(CapturedMessage{kind, message});
  }
};

namespace {

using StatePtr = std::weak_ptr<MessageCapture::State>;

// Which captures are attached to which bus.
std::mutex registry_mu;
std::multimap<const Bus*, StatePtr>& Registry() {
  static auto* registry = new std::multimap<const Bus*, StatePtr>();
  return *registry;
}

void RecordOnBus(const Bus* bus, const Message& message) {
  std::vector<std::shared_ptr<MessageCapture::State>> states;
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    auto [begin, end] = Registry().equal_range(bus);
    for (auto it = begin; it != end; ++it) {
      if (auto s = it->second.lock()) states.push_back(std::move(s));
    }
  }
  for (auto& s : states) s->Add(CapturedMessage::Kind::kAct, message);
}

// The testing library's handlers: report every request to the captures of their bus.
class RecordingHandler final : public Handler {
 public:
  RecordingHandler(const Bus* bus, std::shared_ptr<Handler> inner)
      : bus_(bus), inner_(std::move(inner)) {}
  void Handle(Message message, const Context& context, ReplyFn reply) override {
    RecordOnBus(bus_, message);
    inner_->Handle(std::move(message), context, std::move(reply));
  }

 private:
  const Bus* bus_;
  std::shared_ptr<Handler> inner_;
};

// Overrides a route that existed when a capture was made: records, then calls the route it
// overrode as if it had been chosen itself (so that route's own Prior still works).
class CaptureRoute final : public Handler {
 public:
  explicit CaptureRoute(StatePtr state) : state_(std::move(state)) {}
  void Handle(Message message, const Context& context, ReplyFn reply) override {
    if (auto s = state_.lock()) s->Add(CapturedMessage::Kind::kAct, message);
    const auto& original = context.route()->prior;
    if (!original) return reply(Status::NotFound("capture: the wrapped route is gone"));
    Context inner(context.bus(), original, context.origin());
    original->handler->Handle(std::move(message), inner, std::move(reply));
  }
  bool owned_by(const std::shared_ptr<MessageCapture::State>& s) const {
    return state_.lock() == s;
  }

 private:
  StatePtr state_;
};

}  // namespace

std::shared_ptr<Handler> Recorded(Bus& bus, std::shared_ptr<Handler> handler) {
  return std::make_shared<RecordingHandler>(&bus, std::move(handler));
}

MessageCapture::MessageCapture(Bus& bus) : bus_(bus), state_(std::make_shared<State>()) {
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    Registry().emplace(&bus_, state_);
  }
  StatePtr weak = state_;
  auto observer = bus_.Observe("", MakeHandler([weak](Message m, const Context&, ReplyFn reply) {
                                 if (auto s = weak.lock())
                                   s->Add(CapturedMessage::Kind::kPublish, m);
                                 reply(Message());
                               }));
  if (observer.ok()) observer_id_ = *observer;
  (void)bus_.Update([&](Router& router) {
    for (const auto& route : router.List()) {
      if (dynamic_cast<RecordingHandler*>(route->handler.get()) != nullptr) continue;
      Status s =
          router.Override(route->pattern, std::make_shared<CaptureRoute>(weak), route->description);
      if (!s.ok()) return s;
      wrapped_patterns_.push_back(route->pattern.ToString());
    }
    return Status::Ok();
  });
}

MessageCapture::~MessageCapture() {
  if (observer_id_ != 0) (void)bus_.Unobserve(observer_id_);
  (void)bus_.Update([&](Router& router) {
    for (const auto& text : wrapped_patterns_) {
      auto pattern = Pattern::Parse(text);
      if (!pattern.ok()) continue;
      auto current = router.Get(*pattern);
      auto* wrapper = current ? dynamic_cast<CaptureRoute*>(current->handler.get()) : nullptr;
      // Unwrap only if our wrapper is still on top; otherwise it stays and just forwards.
      if (wrapper != nullptr && wrapper->owned_by(state_)) (void)router.Remove(*pattern);
    }
    return Status::Ok();
  });
  std::lock_guard<std::mutex> lock(registry_mu);
  auto [begin, end] = Registry().equal_range(&bus_);
  for (auto it = begin; it != end; ++it) {
    if (it->second.lock() == state_) {
      Registry().erase(it);
      break;
    }
  }
}

std::vector<CapturedMessage> MessageCapture::entries() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->entries;
}

std::vector<Message> MessageCapture::messages() const {
  std::vector<Message> out;
  for (auto& e : entries()) out.push_back(std::move(e.message));
  return out;
}

std::vector<Message> MessageCapture::Matching(std::string_view pattern) const {
  std::vector<Message> out;
  auto parsed = Pattern::Parse(pattern);
  if (!parsed.ok()) return out;
  for (auto& m : messages()) {
    if (parsed->Matches(m)) out.push_back(std::move(m));
  }
  return out;
}

size_t MessageCapture::size() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->entries.size();
}

void MessageCapture::Clear() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->entries.clear();
}

std::shared_ptr<Handler> MessageCapture::Tap(std::shared_ptr<Handler> handler) {
  return Recorded(bus_, std::move(handler));
}

void PrintTo(const MessageCapture& capture, std::ostream* os) {
  // The matchers list the messages themselves, with why each one fails.
  *os << "a capture of " << capture.size() << " message(s)";
}

}  // namespace shardkit::testing
