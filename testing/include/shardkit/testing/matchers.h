// GoogleMock matchers for messages, captured traffic and replies.
//
// On a Message:
//   MessageLike("store:save,kind:entry", inner…)  routes as the pattern and matches every inner
//   HasField("ent.text", "hi")                    dotted path into nested JSON; array indexes as
//                                                 numbers ("items.0.id"); the value compared is a
//                                                 string's content, else the compact JSON text
//   HasField("ent.n", 3), HasField("ok", true)    numbers compare by value (3 == 3.0), bools
//   exactly HasField("ent.text", HasSubstr("h"))          any string matcher on that text
//   HasField("ent.id")                            present (any value)
// On a MessageCapture, a std::vector<Message> or a std::vector<CapturedMessage>:
//   SentMessage("store:save,kind:entry", inner…)  some recorded message is MessageLike(…)
//   SentInOrder(MessageLike(…), MessageLike(…))   these were sent in this order (others may be
//                                                 interleaved)
//   SentCount("store:save", n)                    exactly n messages matched the pattern
// On a Result<Message> (a reply):
//   IsOkReply(inner…)                             ok, and the reply matches every inner
//   IsErrorReply(Code::kNotFound)                 an error with that code
//   IsErrorReply(Code::kInvalid, HasSubstr("ent"))  … whose message matches
//   (on a PendingReply, .get() first: without it the compiler says so in words)
//
// Failure output lists the captured messages as JSON, numbered, with why the closest one failed.
#pragma once

#include <gmock/gmock.h>

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <shardkit/message/message.h>
#include <shardkit/message/status.h>
#include <shardkit/testing/capture.h>
#include <shardkit/testing/messages.h>

namespace shardkit::testing {

using MessageMatcher = ::testing::Matcher<const Message&>;

// The text at a dotted path in `message`: a string's content, otherwise compact JSON; nullopt
// when the path does not exist. "ent" is a top-level property; "ent.a.0.b" walks into it.
std::optional<std::string> FieldText(const Message& message, std::string_view path);
// As FieldText, plus whether the value found is a number (then `number` holds it).
struct FieldValue {
  std::string text;
  bool is_number = false;
  bool is_bool = false;
  double number = 0;
};
std::optional<FieldValue> FindField(const Message& message, std::string_view path);

MessageMatcher HasField(std::string path);
MessageMatcher HasField(std::string path, ::testing::Matcher<std::string> text);
MessageMatcher HasField(std::string path, const char* text);
MessageMatcher HasField(std::string path, bool value);
MessageMatcher HasFieldNumber(std::string path, double value);
template <typename T>
requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) MessageMatcher
    HasField(std::string path, T value) {
  return HasFieldNumber(std::move(path), static_cast<double>(value));
}

// Routes as `pattern` (every term matches) and matches all of `inner`.
MessageMatcher MessageLikeAll(std::string pattern, std::vector<MessageMatcher> inner);
template <typename... Inner>
MessageMatcher MessageLike(std::string pattern, Inner... inner) {
  return MessageLikeAll(std::move(pattern), std::vector<MessageMatcher>{MessageMatcher(inner)...});
}

// The polymorphic container matchers (MessageCapture, vector<Message>, vector<CapturedMessage>).
class SentMatcher {
 public:
  enum class Mode { kAny, kInOrder, kCount };
  SentMatcher(Mode mode, std::vector<MessageMatcher> matchers, std::string pattern = {},
              size_t count = 0)
      : mode_(mode), matchers_(std::move(matchers)), pattern_(std::move(pattern)), count_(count) {}

  bool MatchAndExplain(const MessageCapture& capture,
                       ::testing::MatchResultListener* listener) const {
    return Match(capture.messages(), listener);
  }
  bool MatchAndExplain(const std::vector<Message>& messages,
                       ::testing::MatchResultListener* listener) const {
    return Match(messages, listener);
  }
  bool MatchAndExplain(const std::vector<CapturedMessage>& entries,
                       ::testing::MatchResultListener* listener) const {
    std::vector<Message> messages;
    for (const auto& e : entries) messages.push_back(e.message);
    return Match(messages, listener);
  }
  void DescribeTo(std::ostream* os) const;
  void DescribeNegationTo(std::ostream* os) const;

 private:
  bool Match(const std::vector<Message>& messages, ::testing::MatchResultListener* listener) const;

  Mode mode_;
  std::vector<MessageMatcher> matchers_;
  std::string pattern_;
  size_t count_;
};

template <typename... Inner>
::testing::PolymorphicMatcher<SentMatcher> SentMessage(std::string pattern, Inner... inner) {
  return ::testing::MakePolymorphicMatcher(
      SentMatcher(SentMatcher::Mode::kAny, {MessageLike(std::move(pattern), inner...)}));
}
template <typename... Steps>
::testing::PolymorphicMatcher<SentMatcher> SentInOrder(Steps... steps) {
  return ::testing::MakePolymorphicMatcher(SentMatcher(
      SentMatcher::Mode::kInOrder, std::vector<MessageMatcher>{MessageMatcher(steps)...}));
}
::testing::PolymorphicMatcher<SentMatcher> SentCount(std::string pattern, size_t count);

using ReplyMatcher = ::testing::Matcher<const Result<Message>&>;

// What IsOkReply and IsErrorReply return: a ReplyMatcher that refuses, at compile time and in
// words, to match anything that is not a reply (a PendingReply is one only after .get()).
class ReplyMatcherOf {
 public:
  explicit ReplyMatcherOf(ReplyMatcher matcher) : matcher_(std::move(matcher)) {}
  template <typename T>
  operator ::testing::Matcher<T>() const {  // NOLINT: implicit, as GMock's matchers are
    static_assert(!std::is_same_v<std::remove_cvref_t<T>, PendingReply>,
                  "IsOkReply/IsErrorReply match a reply (Result<Message>), not a PendingReply: "
                  "write EXPECT_THAT(pending.get(), IsOkReply(...)), after pending.ready()");
    static_assert(std::is_same_v<std::remove_cvref_t<T>, PendingReply> ||
                      std::is_convertible_v<T, const Result<Message>&>,
                  "IsOkReply/IsErrorReply match a reply: a Result<Message>, as Bus::ActAndWait "
                  "and PendingReply::get() return");
    return ::testing::SafeMatcherCast<T>(matcher_);
  }

 private:
  ReplyMatcher matcher_;
};

ReplyMatcher IsOkReplyAll(std::vector<MessageMatcher> inner);
template <typename... Inner>
ReplyMatcherOf IsOkReply(Inner... inner) {
  return ReplyMatcherOf(IsOkReplyAll(std::vector<MessageMatcher>{MessageMatcher(inner)...}));
}
ReplyMatcher IsErrorReplyMatcher(Code code, ::testing::Matcher<std::string> message);
inline ReplyMatcherOf IsErrorReply(Code code,
                                   ::testing::Matcher<std::string> message = ::testing::_) {
  return ReplyMatcherOf(IsErrorReplyMatcher(code, std::move(message)));
}

}  // namespace shardkit::testing
