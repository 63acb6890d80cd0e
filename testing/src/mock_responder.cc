// MockResponder: one route per distinct pattern (an override), plus a catch-all that reports
// messages nothing expected.
#include <shardkit/testing/mock_responder.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include <shardkit/message/closest.h>
#include <shardkit/message/codec.h>
#include <shardkit/message/pattern.h>
#include <shardkit/testing/capture.h>
#include <shardkit/testing/messages.h>

namespace shardkit::testing {

struct MockResponder::Expectation::Shared {
  std::mutex mu;  // guards every expectation and the mock's state
};

struct MockResponder::State {
  Bus* bus = nullptr;
  std::source_location where;
  MockOptions options;
  std::shared_ptr<Expectation::Shared> shared = std::make_shared<Expectation::Shared>();
  // Guarded by shared->mu:
  std::vector<std::unique_ptr<Expectation>> expectations;
  struct OwnRoute {
    std::string key;   // Pattern::key()
    std::string text;  // as given to On()
    std::shared_ptr<Handler> handler;
  };
  std::vector<OwnRoute> routes;
  std::vector<Message> received;
  std::unique_ptr<RealTimeScheduler> owned_scheduler;

  Scheduler& scheduler() {
    if (options.scheduler != nullptr) return *options.scheduler;
    if (!owned_scheduler) owned_scheduler = std::make_unique<RealTimeScheduler>();
    return *owned_scheduler;
  }
};

namespace {

std::string RoutingOf(const Message& m) {
  std::string r = m.RoutingString();
  return r.empty() ? "(no routing properties)" : r;
}

}  // namespace

// --- Expectation ---------------------------------------------------------------------------------

MockResponder::Expectation::Expectation(std::shared_ptr<Shared> shared, std::string pattern)
    : shared_(std::move(shared)), pattern_(std::move(pattern)) {}

MockResponder::Expectation& MockResponder::Expectation::Reply(std::string_view json) {
  auto parsed = ParseMessage(json);
  if (!parsed.ok()) {
    ADD_FAILURE_AT(where_.file_name(), where_.line())
        << "mock '" << pattern_ << "': Reply: " << parsed.status().ToString()
        << "\n  text: " << json;
    Status error = Status::Internal("mock '" + pattern_ + "': malformed reply text");
    return Reply([error](const Message&) -> Result<Message> { return error; });
  }
  return Reply(std::move(parsed).value());
}

MockResponder::Expectation& MockResponder::Expectation::Reply(Message reply) {
  return Reply([reply = std::move(reply)](const Message&) -> Result<Message> { return reply; });
}

MockResponder::Expectation& MockResponder::Expectation::Reply(ReplyGenerator generate) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  generate_ = std::move(generate);
  forward_ = false;
  return *this;
}

MockResponder::Expectation& MockResponder::Expectation::ReplyError(Code code, std::string message,
                                                                   std::string details) {
  Status error(code, std::move(message), std::move(details));
  return Reply([error](const Message&) -> Result<Message> { return error; });
}

MockResponder::Expectation& MockResponder::Expectation::Forward() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  forward_ = true;
  return *this;
}

MockResponder::Expectation& MockResponder::Expectation::Delay(int64_t ms) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  delay_ms_ = ms;
  return *this;
}

MockResponder::Expectation& MockResponder::Expectation::Drop() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  drop_ = true;
  forward_ = false;
  return *this;
}

MockResponder::Expectation& MockResponder::Expectation::WithAll(std::vector<MessageMatcher> m) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  with_.insert(with_.end(), m.begin(), m.end());
  return *this;
}

MockResponder::Expectation& MockResponder::Expectation::Times(int n) {
  Times(::testing::Exactly(n));
  std::lock_guard<std::mutex> lock(shared_->mu);
  times_ = n;
  return *this;
}

MockResponder::Expectation& MockResponder::Expectation::Times(const ::testing::Cardinality& c) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  cardinality_ = c;
  times_ = -1;
  return *this;
}

MockResponder::Expectation& MockResponder::Expectation::InSequence(Sequence& sequence) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  for (const void* earlier : sequence.members_) {
    after_.push_back(static_cast<const Expectation*>(earlier));
  }
  sequence.members_.push_back(this);
  return *this;
}

bool MockResponder::Expectation::Accepts(const Message& message) const {
  return std::all_of(with_.begin(), with_.end(),
                     [&](const MessageMatcher& m) { return m.Matches(message); });
}

bool MockResponder::Expectation::Saturated() const {
  return cardinality_.IsSaturatedByCallCount(static_cast<int>(received_.size()));
}

std::string MockResponder::Expectation::CardinalityText() const {
  if (times_ >= 0) return fmt::format("Times({})", times_);
  std::ostringstream os;
  cardinality_.DescribeTo(&os);
  return os.str();
}

int MockResponder::Expectation::calls() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return static_cast<int>(received_.size());
}

std::vector<Message> MockResponder::Expectation::received() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return received_;
}

// --- Routes --------------------------------------------------------------------------------------

class MockResponder::Route final : public Handler {
 public:
  // `pattern_key` empty: the catch-all.
  Route(std::weak_ptr<State> state, std::string pattern_key)
      : state_(std::move(state)), key_(std::move(pattern_key)) {}

  void Handle(Message message, const Context& context, ReplyFn reply) override {
    auto state = state_.lock();
    if (!state) return reply(Status::Unavailable("the mock is gone"));
    if (key_.empty()) return Unmatched(*state, std::move(message), context, std::move(reply));

    Expectation* chosen;
    {
      std::lock_guard<std::mutex> lock(state->shared->mu);
      chosen = Choose(*state, message);
      if (chosen != nullptr) {
        state->received.push_back(message);
        chosen->received_.push_back(message);
      }
    }
    if (chosen == nullptr) return Unmatched(*state, std::move(message), context, std::move(reply));
    ReplyGenerator generate = chosen->generate_;
    bool forward = chosen->forward_;
    int64_t delay = chosen->delay_ms_;
    if (chosen->drop_) return DropReply(*state, message, context, std::move(reply));
    auto deliver = [generate, forward, message, context, reply]() mutable {
      if (forward) return context.Prior(std::move(message), std::move(reply));
      reply(generate ? generate(message) : Result<Message>(Message()));
    };
    if (delay > 0) {
      Scheduler* scheduler;
      {
        std::lock_guard<std::mutex> lock(state->shared->mu);
        scheduler = &state->scheduler();
      }
      scheduler->RunAfter(delay, std::move(deliver));
    } else {
      deliver();
    }
  }

 private:
  // The expectation that takes `message` (shared->mu held): the first of this route whose With()
  // accepts it and that is not used up; else the last that accepts it (which reports the extra
  // call); null when none accepts it. Reports a call out of sequence.
  Expectation* Choose(State& state, const Message& message) {
    Expectation* chosen = nullptr;
    Expectation* last = nullptr;
    for (auto& e : state.expectations) {
      if (e->pattern_key_ != key_ || !e->Accepts(message)) continue;
      last = e.get();
      if (!e->Saturated()) {
        chosen = e.get();
        break;
      }
    }
    if (chosen == nullptr && last != nullptr) {
      chosen = last;
      ADD_FAILURE_AT(chosen->where_.file_name(), chosen->where_.line())
          << "mock '" << chosen->pattern_ << "': called more often than expected ("
          << chosen->CardinalityText() << ")\n  message: " << Describe(message);
    }
    if (chosen == nullptr) return nullptr;
    for (const Expectation* before : chosen->after_) {
      int calls = static_cast<int>(before->received_.size());
      if (before->cardinality_.IsSatisfiedByCallCount(calls)) continue;
      ADD_FAILURE_AT(chosen->where_.file_name(), chosen->where_.line())
          << "mock '" << chosen->pattern_ << "': called out of sequence: '" << before->pattern_
          << "' (line " << before->where_.line() << ") comes first and has " << calls
          << " call(s), expected " << before->CardinalityText()
          << "\n  message: " << Describe(message);
      break;
    }
    return chosen;
  }

  // Drop(): no answer; a caller with a deadline is answered `timeout` when it passes.
  void DropReply(State& state, const Message& message, const Context& context, ReplyFn reply) {
    int64_t deadline =
        message.meta().deadline != 0 ? message.meta().deadline : context.origin().deadline;
    if (deadline == 0) return;  // nobody would ever time out: the reply never comes
    Scheduler* scheduler;
    {
      std::lock_guard<std::mutex> lock(state.shared->mu);
      scheduler = &state.scheduler();
    }
    int64_t wait = std::max<int64_t>(0, deadline - scheduler->clock().NowMs());
    Status timeout = Status::Timeout(fmt::format("mock: dropped {}", RoutingOf(message)));
    scheduler->RunAfter(wait, [reply = std::move(reply), timeout] { reply(timeout); });
  }

  void Unmatched(State& state, Message message, const Context& context, ReplyFn reply) {
    {
      std::lock_guard<std::mutex> lock(state.shared->mu);
      state.received.push_back(message);
    }
    if (context.has_prior()) return context.Prior(std::move(message), std::move(reply));
    if (state.options.strictness == Strictness::kStrict) {
      ADD_FAILURE_AT(state.where.file_name(), state.where.line())
          << "mock: unexpected message " << Describe(message) << "\n"
          << ExplainUnmatched(*state.bus->routes(), message) << ExplainWith(state, message);
    }
    reply(Status::NotFound(fmt::format("mock: no expectation for {}", RoutingOf(message))));
  }

  // Why each expectation of this route refused the message (With), for the failure message.
  std::string ExplainWith(State& state, const Message& message) {
    std::lock_guard<std::mutex> lock(state.shared->mu);
    std::string out;
    for (const auto& e : state.expectations) {
      if (key_.empty() || e->pattern_key_ != key_) continue;
      for (const auto& m : e->with_) {
        ::testing::StringMatchResultListener why;
        if (m.MatchAndExplain(message, &why)) continue;
        std::ostringstream wanted;
        m.DescribeTo(&wanted);
        out += fmt::format("\n  On('{}') at line {}: With: expected {}; {}", e->pattern_,
                           e->where_.line(), wanted.str(), why.str());
        break;
      }
    }
    return out;
  }

  std::weak_ptr<State> state_;
  std::string key_;
};

// --- MockResponder -------------------------------------------------------------------------------

MockResponder::MockResponder(Bus& bus, MockOptions options, std::source_location where)
    : state_(std::make_shared<State>()) {
  state_->bus = &bus;
  state_->where = where;
  state_->options = options;
  auto catch_all = Recorded(bus, std::make_shared<Route>(state_, ""));
  Status s = bus.Override("", catch_all, "mock: unexpected messages");
  if (!s.ok()) ADD_FAILURE() << "mock: " << s.ToString();
  state_->routes.push_back({"", "", catch_all});
}

MockResponder::~MockResponder() {
  Verify();
  std::vector<State::OwnRoute> routes;
  {
    std::lock_guard<std::mutex> lock(state_->shared->mu);
    routes = state_->routes;
  }
  (void)state_->bus->Update([&](Router& router) {
    for (const auto& route : routes) {
      auto pattern = Pattern::Parse(route.text);
      if (!pattern.ok()) continue;
      auto current = router.Get(*pattern);
      if (current && current->handler == route.handler) (void)router.Remove(*pattern);
    }
    return Status::Ok();
  });
}

MockResponder::Expectation& MockResponder::On(std::string_view pattern,
                                              std::source_location where) {
  auto parsed = Pattern::Parse(pattern);
  std::string key = parsed.ok() ? parsed->key() : std::string(pattern);
  if (!parsed.ok()) ADD_FAILURE() << "mock: On: " << parsed.status().ToString();
  bool routed;
  Expectation* e;
  {
    std::lock_guard<std::mutex> lock(state_->shared->mu);
    state_->expectations.push_back(
        std::unique_ptr<Expectation>(new Expectation(state_->shared, std::string(pattern))));
    e = state_->expectations.back().get();
    e->pattern_key_ = key;
    e->where_ = where;
    routed = std::any_of(state_->routes.begin(), state_->routes.end(),
                         [&](const auto& r) { return r.key == key; });
  }
  if (parsed.ok() && !routed) {
    auto handler = Recorded(*state_->bus, std::make_shared<Route>(state_, key));
    Status s = state_->bus->Override(pattern, handler, "mock: " + std::string(pattern));
    if (!s.ok()) ADD_FAILURE() << "mock: On('" << pattern << "'): " << s.ToString();
    std::lock_guard<std::mutex> lock(state_->shared->mu);
    state_->routes.push_back({key, std::string(pattern), handler});
  }
  return *e;
}

std::vector<Message> MockResponder::received() const {
  std::lock_guard<std::mutex> lock(state_->shared->mu);
  return state_->received;
}

bool MockResponder::Verify() {
  std::lock_guard<std::mutex> lock(state_->shared->mu);
  bool ok = true;
  for (const auto& e : state_->expectations) {
    int calls = static_cast<int>(e->received_.size());
    // Too many calls were reported when they came.
    if (e->cardinality_.IsSatisfiedByCallCount(calls) ||
        e->cardinality_.IsOverSaturatedByCallCount(calls))
      continue;
    ok = false;
    if (e->times_ >= 0) {
      ADD_FAILURE_AT(e->where_.file_name(), e->where_.line())
          << "mock '" << e->pattern_ << "': expected " << e->times_ << " call(s), got " << calls;
    } else {
      ADD_FAILURE_AT(e->where_.file_name(), e->where_.line())
          << "mock '" << e->pattern_ << "': expected to be " << e->CardinalityText() << ", got "
          << calls << " call(s)";
    }
  }
  return ok;
}

std::string ExplainUnmatched(const Router& routes, const Message& message, size_t max_patterns) {
  std::vector<Pattern> patterns;
  for (const auto& route : routes.List()) patterns.push_back(route->pattern);
  auto near = ClosestPatterns(patterns, message, max_patterns);
  std::string out = fmt::format("  routing properties: {}\n", RoutingOf(message));
  if (near.empty()) return out + "  no patterns are routed on this bus";
  return out + "  closest routed patterns:\n" + FormatNearPatterns(near, "    ");
}

}  // namespace shardkit::testing
