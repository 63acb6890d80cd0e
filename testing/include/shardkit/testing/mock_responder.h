// MockResponder: stands in for the services a service under test talks to, by pattern.
//
//   Bus bus;
//   MockResponder mock(bus);
//   mock.On("store:load,kind:entry").Reply(R"({"ent":{"id":"1","text":"hi"}})");
//   mock.On("store:save,kind:entry").Reply([](const Message& m) -> Result<Message> { … }).Times(1);
//   mock.On("store:remove").ReplyError(Code::kConflict, "version 3 != 2");
//   mock.On("store:list").Reply(R"({"items":[]})").Delay(20);   // needs a scheduler, see below
//   mock.On("store:save").With(HasField("version", 3), HasField("ent.count", 8)).Reply("{}");
//   mock.On("store:load").Drop();                                // a store that never answers
//   mock.On("store:load").Reply("{}").Times(AtLeast(2));         // GMock cardinalities
//   Sequence s;  mock.On("a:1").InSequence(s);  mock.On("b:1").InSequence(s);   // a before b
//
// Each On() routes its pattern on the bus (as an override: a pattern already routed stays
// reachable with Forward()). Expectations for the same pattern are used in the order declared:
// the first one whose With() matchers accept the message and that is not used up (Times) answers.
// A message is answered by the most specific pattern, as the router always does.
//
// Modes:
//   kStrict (default)  a message that no expectation takes fails the test (ADD_FAILURE) with its
//                      routing properties and the closest routed patterns, and is answered
//                      `not_found`; a message beyond Times(n) fails the test too.
//   kLenient           such messages are answered `not_found` (or passed to what the mock's
//                      catch-all overrode) without failing. Times(n) is still checked.
// Verify() (also run by the destructor) fails the test for each expectation called fewer times
// than its Times(n). The destructor removes the mock's routes from the bus.
//
// Delay(ms) hands the reply to MockOptions::scheduler; give a ManualScheduler for deterministic
// tests (without one the mock makes a RealTimeScheduler on first use).
//
// Thread-safety: messages may arrive on any thread; configure expectations before traffic starts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <source_location>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>

#include <shardkit/message/bus.h>
#include <shardkit/testing/matchers.h>
#include <shardkit/testing/scheduler.h>

namespace shardkit::testing {

enum class Strictness { kStrict, kLenient };

struct MockOptions {
  Strictness strictness = Strictness::kStrict;
  Scheduler* scheduler = nullptr;  // for Delay; must outlive the mock's delayed replies
};

using ReplyGenerator = std::function<Result<Message>(const Message&)>;

// Expectations that must be called in the order they joined the sequence (InSequence): a message
// taken by one whose predecessors are not yet satisfied fails the test, naming the one missing.
// A sequence orders the expectations of one MockResponder.
class Sequence {
 public:
  Sequence() = default;
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

 private:
  friend class MockResponder;
  std::vector<const void*> members_;  // Expectation*, in order
};

class MockResponder {
  class Route;
  struct State;

 public:
  class Expectation {
   public:
    // The reply: a message as JSON text, a Message, or computed from the request.
    Expectation& Reply(std::string_view json);
    Expectation& Reply(Message reply);
    Expectation& Reply(ReplyGenerator generate);
    // An error reply with a canonical code.
    Expectation& ReplyError(Code code, std::string message = "mocked error",
                            std::string details_json = {});
    // Passes the message to the handler this pattern overrode (a real or fixture store).
    Expectation& Forward();
    // Answers `ms` later by the scheduler's clock.
    Expectation& Delay(int64_t ms);
    // Never answers, as a store that is down: the caller sees `timeout` at the message's deadline
    // (its own or the one it was sent under, by the scheduler's clock), or no reply at all when it
    // has none.
    Expectation& Drop();
    // Takes only messages that match every matcher (HasField with nested paths and any GoogleTest
    // matcher, MessageLike, Not, AnyOf…); other messages go to the next expectation for the
    // pattern, then to the route the pattern overrode, else they are unexpected.
    template <typename... Matchers>
    Expectation& With(Matchers... matchers) {
      return WithAll({MessageMatcher(matchers)...});
    }
    Expectation& WithAll(std::vector<MessageMatcher> matchers);
    // Exactly `n` calls (upper bound checked at once, lower bound by Verify).
    Expectation& Times(int n);
    // A GMock cardinality: AtLeast(n), AtMost(n), Between(a, b), AnyNumber(), Exactly(n).
    Expectation& Times(const ::testing::Cardinality& cardinality);
    // Must be called after the expectations that joined `sequence` before it are satisfied.
    Expectation& InSequence(Sequence& sequence);

    const std::string& pattern() const { return pattern_; }
    int calls() const;
    // The messages this expectation answered, in arrival order.
    std::vector<Message> received() const;

   private:
    friend class MockResponder;
    friend class Route;
    struct Shared;
    Expectation(std::shared_ptr<Shared> shared, std::string pattern);

    std::shared_ptr<Shared> shared_;
    std::string pattern_;
    std::string pattern_key_;  // Pattern::key(): which route it belongs to
    std::source_location where_;
    bool Accepts(const Message& message) const;
    bool Saturated() const;               // one more call would be too many
    std::string CardinalityText() const;  // "Times(2)" or GMock's description

    ReplyGenerator generate_;  // null: reply {} (an empty object)
    bool forward_ = false;
    bool drop_ = false;
    int64_t delay_ms_ = 0;
    ::testing::Cardinality cardinality_ = ::testing::AnyNumber();
    int times_ = -1;  // set by Times(int): failures say "Times(n)"
    std::vector<MessageMatcher> with_;
    std::vector<const Expectation*> after_;  // earlier members of its sequences
    std::vector<Message> received_;
  };

  // Failures about unexpected messages are reported at `where` (the line that made the mock).
  explicit MockResponder(Bus& bus, MockOptions options = {},
                         std::source_location where = std::source_location::current());
  ~MockResponder();
  MockResponder(const MockResponder&) = delete;
  MockResponder& operator=(const MockResponder&) = delete;

  // A new expectation for `pattern` (pattern.h notation). An invalid pattern fails the test.
  // Failures about this expectation (Times) are reported at `where`, the line calling On.
  Expectation& On(std::string_view pattern,
                  std::source_location where = std::source_location::current());
  // Every message the mock received (answered or not), in arrival order.
  std::vector<Message> received() const;
  // Fails the test for every expectation with fewer calls than its Times(n); returns whether all
  // were satisfied.
  bool Verify();

 private:
  std::shared_ptr<State> state_;
};

// For failure messages: the routing properties of `message` and the routed patterns closest to
// it (most matching terms first, each with why it does not match). Used by strict mocks.
std::string ExplainUnmatched(const Router& routes, const Message& message, size_t max_patterns = 3);

}  // namespace shardkit::testing
