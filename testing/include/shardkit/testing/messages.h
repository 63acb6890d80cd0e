// Building messages and waiting for replies in tests, and how messages print in failure output.
//
//   Message m = Msg(R"({"store":"load","kind":"entry","id":"42"})");   // JSON
//   Message m = Msg("store:load,kind:entry,id:42");                    // the pattern notation
//   PendingReply r = Send(bus, m);          // does not block: delayed or dropped replies are fine
//   ASSERT_TRUE(r.ready());  EXPECT_THAT(r.get(), IsOkReply());
//
// Msg fails the current test (ADD_FAILURE, with the parser's reason) on malformed text and returns
// an empty message, so a typo in a test reads as a test failure, not a crash.
//
// Thread-safety: PendingReply may be completed on any thread and read on another.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <shardkit/message/bus.h>
#include <shardkit/message/message.h>
#include <shardkit/message/status.h>

namespace shardkit::testing {

// JSON text (starting with '{') or pattern notation with exact values only.
Message Msg(std::string_view text);

// The reply of one message sent with Send: empty until the handler answers.
class PendingReply {
 public:
  PendingReply();
  // Whether the reply has arrived.
  bool ready() const;
  // The reply; a `timeout` error saying "no reply yet" when it has not arrived.
  Result<Message> get() const;
  // Blocks up to `timeout` (real time) for the reply; true when it arrived. For replies that come
  // from other threads; with a ManualScheduler, advance it instead.
  bool Wait(std::chrono::milliseconds timeout) const;
  // How many times the handler replied (1 when the contract is kept; 2+ is a handler bug).
  int reply_count() const;

  // The ReplyFn that completes this PendingReply (what Send passes to Bus::Act).
  ReplyFn Callback() const;

 private:
  struct State {
    mutable std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<Message>> reply;  // guarded by mu
    int count = 0;                         // guarded by mu
  };
  std::shared_ptr<State> state_;
};

// Bus::Act without blocking.
PendingReply Send(Bus& bus, Message message);

// The JSON text of a message without its meta$ (ids differ run to run), for failure output.
std::string Describe(const Message& message);
// "ok {…}" or "error not_found: …".
std::string Describe(const Result<Message>& reply);

}  // namespace shardkit::testing

namespace shardkit {
// GoogleTest printers (found by argument-dependent lookup), so failures show JSON, not bytes.
void PrintTo(const Message& message, std::ostream* os);
void PrintTo(const Result<Message>& reply, std::ostream* os);
void PrintTo(const Status& status, std::ostream* os);
}  // namespace shardkit
