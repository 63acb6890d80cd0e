// Msg, PendingReply, Send and the printers.
#include <shardkit/testing/messages.h>

#include <gtest/gtest.h>

#include <shardkit/message/codec.h>
#include <shardkit/message/pattern.h>

namespace shardkit::testing {

Message Msg(std::string_view text) {
  size_t start = text.find_first_not_of(" \t\r\n");
  if (start != std::string_view::npos && text[start] == '{') {
    auto parsed = ParseMessage(text);
    if (!parsed.ok()) {
      ADD_FAILURE() << "Msg: not a valid message: " << parsed.status().ToString()
                    << "\n  text: " << text;
      return Message();
    }
    return std::move(parsed).value();
  }
  auto pattern = Pattern::Parse(text);
  if (!pattern.ok()) {
    ADD_FAILURE() << "Msg: " << pattern.status().ToString();
    return Message();
  }
  Message message;
  for (const auto& term : pattern->terms()) {
    if (term.glob)
      ADD_FAILURE() << "Msg: '" << text << "': term " << term.name << " is a glob, not a value";
    message.SetString(term.name, term.value);
  }
  return message;
}

PendingReply::PendingReply() : state_(std::make_shared<State>()) {}

bool PendingReply::ready() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->reply.has_value();
}

Result<Message> PendingReply::get() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->reply) return Status::Timeout("no reply yet");
  return *state_->reply;
}

bool PendingReply::Wait(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return state_->reply.has_value(); });
}

int PendingReply::reply_count() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->count;
}

ReplyFn PendingReply::Callback() const {
  return [state = state_](Result<Message> reply) {
    std::lock_guard<std::mutex> lock(state->mu);
    if (++state->count == 1) state->reply = std::move(reply);
    state->cv.notify_all();
  };
}

PendingReply Send(Bus& bus, Message message) {
  PendingReply pending;
  bus.Act(std::move(message), pending.Callback());
  return pending;
}

std::string Describe(const Message& message) {
  if (message.meta().empty()) return ToJson(message);
  Message copy = message;
  copy.meta() = Meta{};
  return ToJson(copy);
}

std::string Describe(const Result<Message>& reply) {
  if (reply.ok()) return "ok " + Describe(*reply);
  return "error " + reply.status().ToString();
}

}  // namespace shardkit::testing

namespace shardkit {
void PrintTo(const Message& message, std::ostream* os) { *os << testing::Describe(message); }
void PrintTo(const Result<Message>& reply, std::ostream* os) { *os << testing::Describe(reply); }
void PrintTo(const Status& status, std::ostream* os) {
  *os << (status.ok() ? "ok" : status.ToString());
}
}  // namespace shardkit
