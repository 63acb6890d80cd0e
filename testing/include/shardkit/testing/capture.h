// MessageCapture: records every message that travels over a bus — requests (Act, including the
// child messages a service sends) and fire-and-forget publishes — in the order they happened.
//
//   Bus bus;
//   bus.Add("timeline:*", MakeTimelineService());
//   MockResponder mock(bus);
//   MessageCapture sent(bus);
//   bus.ActAndWait(Msg("timeline:post,user:ann,text:hi"));
//   EXPECT_THAT(sent, SentMessage("store:save,kind:entry", HasField("ent.text", "hi")));
//   EXPECT_THAT(sent, SentInOrder(MessageLike("store:save"), MessageLike("info:entry")));
//
// What is recorded:
//   - every publish (the capture observes every pattern);
//   - every request reaching a route that existed when the capture was made (it wraps them;
//     its destructor unwraps them);
//   - every request reaching a MockResponder, FixtureStore or Cluster route on this bus, whenever
//     that route was added;
//   - requests reaching a handler wrapped with Tap(), for handlers added later by hand.
// A request is recorded when it reaches its handler, so a message the bus refused (hop limit,
// passed deadline, no route) is not recorded.
//
// Thread-safety: recording and reading may happen on any thread.
#pragma once

#include <memory>
#include <mutex>
#include <ostream>
#include <string_view>
#include <vector>

#include <shardkit/message/bus.h>

namespace shardkit::testing {

struct CapturedMessage {
  enum class Kind { kAct, kPublish };
  Kind kind = Kind::kAct;
  Message message;
};

class MessageCapture {
 public:
  explicit MessageCapture(Bus& bus);
  ~MessageCapture();
  MessageCapture(const MessageCapture&) = delete;
  MessageCapture& operator=(const MessageCapture&) = delete;

  // Everything recorded, in order.
  std::vector<CapturedMessage> entries() const;
  // The messages only (what the matchers look at).
  std::vector<Message> messages() const;
  // The recorded messages matching `pattern` (pattern.h notation), in order.
  std::vector<Message> Matching(std::string_view pattern) const;
  size_t size() const;
  void Clear();

  // `handler`, recording every request it receives into the captures of its bus.
  std::shared_ptr<Handler> Tap(std::shared_ptr<Handler> handler);

  struct State;

 private:
  Bus& bus_;
  std::shared_ptr<State> state_;
  uint64_t observer_id_ = 0;
  std::vector<std::string> wrapped_patterns_;
};

// Wraps `handler` so that every request it receives is recorded by every capture attached to
// `bus` at that moment. The testing library's own handlers are wrapped this way.
std::shared_ptr<Handler> Recorded(Bus& bus, std::shared_ptr<Handler> handler);

// For failure output: "a capture of N message(s)" (the matchers list the messages).
void PrintTo(const MessageCapture& capture, std::ostream* os);

}  // namespace shardkit::testing
