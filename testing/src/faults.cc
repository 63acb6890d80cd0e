// FaultInjector: rules matched per route name and message pattern; the wrapped handler applies
// the first rule that is not used up.
#include <shardkit/testing/faults.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <vector>

#include <shardkit/message/pattern.h>

namespace shardkit::testing {
namespace {

enum class Action { kNone, kDelay, kDrop, kError, kDuplicate, kReorder };

struct Held {
  std::shared_ptr<Handler> inner;
  Message message;
  Context context;
  ReplyFn reply;
};

void Deliver(Held& h) { h.inner->Handle(std::move(h.message), h.context, std::move(h.reply)); }

}  // namespace

struct FaultInjector::Rule::Data {
  std::mutex* mu = nullptr;  // the injector's; guards everything below
  std::string route_glob;
  std::optional<Pattern> pattern;
  Action action = Action::kNone;
  int64_t delay_ms = 0;
  Status error;
  size_t window = 2;
  int times = -1;
  int hits = 0;
  std::vector<Held> held;  // Reorder: waiting for the window to fill
  uint64_t flush_generation = 0;
};

struct FaultInjector::State {
  explicit State(Scheduler& s, FaultOptions o) : scheduler(s), options(o) {}
  std::mutex mu;
  Scheduler& scheduler;
  FaultOptions options;
  std::vector<std::unique_ptr<Rule>> rules;       // guarded by mu
  std::vector<std::shared_ptr<Rule::Data>> data;  // guarded by mu (parallel to rules)
};

namespace {

// Releases what a Reorder rule holds, newest first.
void FlushReversed(std::vector<Held> held) {
  std::reverse(held.begin(), held.end());
  for (auto& h : held) Deliver(h);
}

class FaultHandler final : public Handler {
 public:
  FaultHandler(std::weak_ptr<FaultInjector::State> state, std::string name,
               std::shared_ptr<Handler> inner)
      : state_(std::move(state)), name_(std::move(name)), inner_(std::move(inner)) {}

  void Handle(Message message, const Context& context, ReplyFn reply) override {
    auto state = state_.lock();
    if (!state) return inner_->Handle(std::move(message), context, std::move(reply));
    Action action = Action::kNone;
    int64_t delay_ms = 0;
    Status error;
    std::vector<Held> release;
    bool schedule_flush = false;
    std::shared_ptr<FaultInjector::Rule::Data> rule;
    uint64_t generation = 0;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      for (const auto& d : state->data) {
        if (d->action == Action::kNone || !GlobMatches(d->route_glob, name_)) continue;
        if (d->pattern && !d->pattern->Matches(message)) continue;
        if (d->times >= 0 && d->hits >= d->times) continue;
        ++d->hits;
        rule = d;
        action = d->action;
        delay_ms = d->delay_ms;
        error = d->error;
        if (action == Action::kReorder) {
          d->held.push_back(Held{inner_, std::move(message), context, std::move(reply)});
          if (d->held.size() >= d->window) {
            release.swap(d->held);
            ++d->flush_generation;
          } else if (d->held.size() == 1) {
            schedule_flush = true;
            generation = d->flush_generation;
          }
        }
        break;
      }
    }
    switch (action) {
      case Action::kNone:
        return inner_->Handle(std::move(message), context, std::move(reply));
      case Action::kDelay:
        state->scheduler.RunAfter(delay_ms, [inner = inner_, message = std::move(message), context,
                                             reply = std::move(reply)]() mutable {
          inner->Handle(std::move(message), context, std::move(reply));
        });
        return;
      case Action::kDrop:
        return Drop(*state, message, context, std::move(reply));
      case Action::kError:
        return reply(error);
      case Action::kDuplicate: {
        Message copy = message;
        inner_->Handle(std::move(message), context, std::move(reply));
        inner_->Handle(std::move(copy), context, [](Result<Message>) {});
        return;
      }
      case Action::kReorder:
        if (!release.empty()) FlushReversed(std::move(release));
        if (schedule_flush) ScheduleFlush(state, rule, generation);
        return;
    }
  }

 private:
  // Answers `timeout` when the request's deadline passes (or after drop_timeout_ms without one),
  // as a request lost on the wire would be.
  void Drop(FaultInjector::State& state, const Message& message, const Context& context,
            ReplyFn reply) {
    int64_t deadline =
        message.meta().deadline != 0 ? message.meta().deadline : context.origin().deadline;
    int64_t wait = deadline != 0 ? std::max<int64_t>(0, deadline - state.scheduler.clock().NowMs())
                                 : state.options.drop_timeout_ms;
    Status timeout =
        Status::Timeout(fmt::format("dropped by fault injection on route '{}'", name_));
    state.scheduler.RunAfter(wait, [reply = std::move(reply), timeout] { reply(timeout); });
  }

  // Releases a Reorder rule's held messages after reorder_flush_ms unless the window filled first.
  static void ScheduleFlush(const std::shared_ptr<FaultInjector::State>& state,
                            std::shared_ptr<FaultInjector::Rule::Data> rule, uint64_t generation) {
    std::weak_ptr<FaultInjector::State> weak = state;
    state->scheduler.RunAfter(state->options.reorder_flush_ms, [weak, rule, generation] {
      auto s = weak.lock();
      if (!s) return;
      std::vector<Held> held;
      {
        std::lock_guard<std::mutex> lock(s->mu);
        if (rule->flush_generation != generation) return;  // the window filled meanwhile
        held.swap(rule->held);
        ++rule->flush_generation;
      }
      FlushReversed(std::move(held));
    });
  }

  std::weak_ptr<FaultInjector::State> state_;
  std::string name_;
  std::shared_ptr<Handler> inner_;
};

}  // namespace

FaultInjector::Rule& FaultInjector::Rule::Delay(int64_t ms) {
  std::lock_guard<std::mutex> lock(*data_->mu);
  data_->action = Action::kDelay;
  data_->delay_ms = ms;
  return *this;
}
FaultInjector::Rule& FaultInjector::Rule::Drop() {
  std::lock_guard<std::mutex> lock(*data_->mu);
  data_->action = Action::kDrop;
  return *this;
}
FaultInjector::Rule& FaultInjector::Rule::Error(Code code, std::string message) {
  std::lock_guard<std::mutex> lock(*data_->mu);
  data_->action = Action::kError;
  data_->error = Status(code, std::move(message));
  return *this;
}
FaultInjector::Rule& FaultInjector::Rule::Duplicate() {
  std::lock_guard<std::mutex> lock(*data_->mu);
  data_->action = Action::kDuplicate;
  return *this;
}
FaultInjector::Rule& FaultInjector::Rule::Reorder(size_t window) {
  std::lock_guard<std::mutex> lock(*data_->mu);
  data_->action = Action::kReorder;
  data_->window = std::max<size_t>(window, 2);
  return *this;
}
FaultInjector::Rule& FaultInjector::Rule::Times(int n) {
  std::lock_guard<std::mutex> lock(*data_->mu);
  data_->times = n;
  return *this;
}
int FaultInjector::Rule::hits() const {
  std::lock_guard<std::mutex> lock(*data_->mu);
  return data_->hits;
}

FaultInjector::FaultInjector(Scheduler& scheduler, FaultOptions options)
    : state_(std::make_shared<State>(scheduler, options)) {}

FaultInjector::~FaultInjector() { Clear(); }

std::shared_ptr<Handler> FaultInjector::Wrap(std::string route_name,
                                             std::shared_ptr<Handler> inner) {
  return std::make_shared<FaultHandler>(state_, std::move(route_name), std::move(inner));
}

FaultInjector::Rule& FaultInjector::On(std::string route_glob, std::string_view message_pattern) {
  auto data = std::make_shared<Rule::Data>();
  data->mu = &state_->mu;
  data->route_glob = std::move(route_glob);
  if (!message_pattern.empty()) {
    auto parsed = Pattern::Parse(message_pattern);
    if (parsed.ok()) {
      data->pattern = std::move(parsed).value();
    } else {
      ADD_FAILURE() << "FaultInjector::On: " << parsed.status().ToString();
    }
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->data.push_back(data);
  state_->rules.push_back(std::make_unique<Rule>(data));
  return *state_->rules.back();
}

void FaultInjector::Clear() {
  std::vector<Held> held;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    for (auto& d : state_->data) {
      for (auto& h : d->held) held.push_back(std::move(h));
      d->held.clear();
      ++d->flush_generation;
    }
    state_->data.clear();
    state_->rules.clear();
  }
  for (auto& h : held) Deliver(h);
}

}  // namespace shardkit::testing
