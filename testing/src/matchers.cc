// Message, capture and reply matchers.
#include <shardkit/testing/matchers.h>

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <charconv>
#include <cstdlib>
#include <sstream>

#include <shardkit/message/json.h>
#include <shardkit/message/pattern.h>

namespace shardkit::testing {
namespace {

using ::testing::MatchResultListener;
using ::testing::StringMatchResultListener;

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    if (dot == std::string_view::npos) dot = path.size();
    parts.push_back(path.substr(start, dot - start));
    start = dot + 1;
  }
  return parts;
}

FieldValue FromJsonValue(const rapidjson::Value& v) {
  FieldValue out;
  if (v.IsString()) {
    out.text.assign(v.GetString(), v.GetStringLength());
  } else {
    out.text = ToJsonText(v);
    out.is_number = v.IsNumber();
    out.is_bool = v.IsBool();
    if (v.IsNumber()) out.number = v.GetDouble();
  }
  return out;
}

// The first term of `pattern` that `message` fails, said for people; empty when it matches.
std::string WhyNot(const Pattern& pattern, const Message& message) {
  for (const auto& term : pattern.terms()) {
    const Value* v = message.Find(term.name);
    if (v == nullptr) return fmt::format("no property '{}'", term.name);
    if (!v->is_routable()) return fmt::format("'{}' is not a routing value", term.name);
    bool ok = term.glob ? GlobMatches(term.value, v->text) : term.value == v->text;
    if (!ok) return fmt::format("{} is '{}', pattern wants '{}'", term.name, v->text, term.value);
  }
  return {};
}

std::string DescribeText(const MessageMatcher& m) {
  std::ostringstream os;
  m.DescribeTo(&os);
  return os.str();
}

// The first of `inner` that `message` fails, with its explanation in `why_not`; null if all match.
const MessageMatcher* FirstMismatch(const std::vector<MessageMatcher>& inner,
                                    const Message& message, std::string& why_not) {
  for (const auto& m : inner) {
    StringMatchResultListener listener;
    if (!m.MatchAndExplain(message, &listener)) {
      why_not = listener.str();
      return &m;
    }
  }
  return nullptr;
}

// " that A and B …" after a matcher's own description.
void DescribeInner(const std::vector<MessageMatcher>& inner, std::ostream* os) {
  for (size_t i = 0; i < inner.size(); ++i) {
    *os << (i == 0 ? " that " : " and ");
    inner[i].DescribeTo(os);
  }
}

class HasFieldMatcher final : public ::testing::MatcherInterface<const Message&> {
 public:
  enum class Kind { kPresent, kText, kNumber, kBool };
  HasFieldMatcher(std::string path, Kind kind, ::testing::Matcher<std::string> text, double number,
                  bool flag)
      : path_(std::move(path)), kind_(kind), text_(std::move(text)), number_(number), flag_(flag) {}

  bool MatchAndExplain(const Message& message, MatchResultListener* listener) const override {
    auto field = FindField(message, path_);
    if (!field) {
      *listener << "has no field " << path_;
      return false;
    }
    switch (kind_) {
      case Kind::kPresent:
        *listener << path_ << " is " << field->text;
        return true;
      case Kind::kNumber:
        *listener << path_ << " is " << field->text;
        return field->is_number && field->number == number_;
      case Kind::kBool:
        *listener << path_ << " is " << field->text;
        return field->is_bool && field->text == (flag_ ? "true" : "false");
      case Kind::kText: {
        StringMatchResultListener inner;
        bool ok = text_.MatchAndExplain(field->text, &inner);
        *listener << path_ << " is " << ::testing::PrintToString(field->text);
        if (!inner.str().empty()) *listener << " (" << inner.str() << ")";
        return ok;
      }
    }
    return false;
  }
  void DescribeTo(std::ostream* os) const override {
    *os << "has field " << path_;
    switch (kind_) {
      case Kind::kPresent:
        break;
      case Kind::kNumber:
        *os << " == " << number_;
        break;
      case Kind::kBool:
        *os << " == " << (flag_ ? "true" : "false");
        break;
      case Kind::kText:
        *os << " that ";
        text_.DescribeTo(os);
        break;
    }
  }

 private:
  std::string path_;
  Kind kind_;
  ::testing::Matcher<std::string> text_;
  double number_;
  bool flag_;
};

class MessageLikeMatcher final : public ::testing::MatcherInterface<const Message&> {
 public:
  MessageLikeMatcher(std::string text, std::vector<MessageMatcher> inner)
      : text_(std::move(text)), inner_(std::move(inner)) {
    auto parsed = Pattern::Parse(text_);
    if (parsed.ok()) {
      pattern_ = std::move(parsed).value();
    } else {
      error_ = parsed.status().ToString();
    }
  }

  bool MatchAndExplain(const Message& message, MatchResultListener* listener) const override {
    if (!error_.empty()) {
      *listener << "bad pattern: " << error_;
      return false;
    }
    std::string why = WhyNot(pattern_, message);
    if (!why.empty()) {
      *listener << "does not route as '" << text_ << "': " << why;
      return false;
    }
    std::string why_not;
    if (const MessageMatcher* failed = FirstMismatch(inner_, message, why_not)) {
      *listener << "routes as '" << text_ << "' but "
                << (why_not.empty() ? "does not " + DescribeText(*failed) : why_not);
      return false;
    }
    *listener << "routes as '" << text_ << "'";
    return true;
  }
  void DescribeTo(std::ostream* os) const override {
    *os << "a message routed as '" << text_ << "'";
    DescribeInner(inner_, os);
  }

 private:
  std::string text_;
  Pattern pattern_;
  std::string error_;
  std::vector<MessageMatcher> inner_;
};

class OkReplyMatcher final : public ::testing::MatcherInterface<const Result<Message>&> {
 public:
  explicit OkReplyMatcher(std::vector<MessageMatcher> inner) : inner_(std::move(inner)) {}
  bool MatchAndExplain(const Result<Message>& reply, MatchResultListener* listener) const override {
    if (!reply.ok()) {
      *listener << "which is an error";  // the value printed beside this names it
      return false;
    }
    std::string why_not;
    if (FirstMismatch(inner_, *reply, why_not) != nullptr) {
      *listener << "is ok, but " << (why_not.empty() ? "an inner matcher failed" : why_not);
      return false;
    }
    return true;
  }
  void DescribeTo(std::ostream* os) const override {
    *os << "is an ok reply";
    DescribeInner(inner_, os);
  }

 private:
  std::vector<MessageMatcher> inner_;
};

class ErrorReplyMatcher final : public ::testing::MatcherInterface<const Result<Message>&> {
 public:
  ErrorReplyMatcher(Code code, ::testing::Matcher<std::string> message)
      : code_(code), message_(std::move(message)) {}
  bool MatchAndExplain(const Result<Message>& reply, MatchResultListener* listener) const override {
    if (reply.ok()) {
      *listener << "is ok";
      return false;
    }
    if (reply.status().code() != code_) {
      *listener << "is the error " << reply.status().ToString();
      return false;
    }
    StringMatchResultListener inner;
    bool ok = message_.MatchAndExplain(reply.status().message(), &inner);
    if (!ok) *listener << "has the message " << ::testing::PrintToString(reply.status().message());
    return ok;
  }
  void DescribeTo(std::ostream* os) const override {
    *os << "is a " << CodeName(code_) << " error whose message ";
    message_.DescribeTo(os);
  }

 private:
  Code code_;
  ::testing::Matcher<std::string> message_;
};

constexpr size_t kMaxListed = 20;

void ListMessages(const std::vector<Message>& messages, const MessageMatcher* matcher,
                  MatchResultListener* listener) {
  for (size_t i = 0; i < messages.size() && i < kMaxListed; ++i) {
    *listener << "\n    #" << i << " " << Describe(messages[i]);
    if (matcher != nullptr) {
      StringMatchResultListener why;
      matcher->MatchAndExplain(messages[i], &why);
      if (!why.str().empty()) *listener << "\n        " << why.str();
    }
  }
  if (messages.size() > kMaxListed)
    *listener << "\n    … and " << messages.size() - kMaxListed << " more";
}

}  // namespace

std::optional<FieldValue> FindField(const Message& message, std::string_view path) {
  auto parts = SplitPath(path);
  const Value* top = message.Find(parts[0]);
  if (top == nullptr) return std::nullopt;
  if (parts.size() == 1 && top->is_scalar()) {
    FieldValue out;
    out.text = top->text;
    out.is_number = top->type == ValueType::kNumber;
    out.is_bool = top->type == ValueType::kBool;
    if (out.is_number) out.number = std::strtod(out.text.c_str(), nullptr);
    return out;
  }
  if (top->is_scalar()) return std::nullopt;
  auto doc = ParseJson(top->text, parts[0]);
  if (!doc.ok()) return std::nullopt;
  const rapidjson::Value* v = &*doc;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view part = parts[i];
    if (v->IsObject()) {
      auto it = v->FindMember(rapidjson::Value(rapidjson::StringRef(part.data(), part.size())));
      if (it == v->MemberEnd()) return std::nullopt;
      v = &it->value;
    } else if (v->IsArray()) {
      size_t index = 0;
      auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
      if (ec != std::errc() || end != part.data() + part.size() || index >= v->Size())
        return std::nullopt;
      v = &(*v)[static_cast<rapidjson::SizeType>(index)];
    } else {
      return std::nullopt;
    }
  }
  return FromJsonValue(*v);
}

std::optional<std::string> FieldText(const Message& message, std::string_view path) {
  auto field = FindField(message, path);
  if (!field) return std::nullopt;
  return std::move(field->text);
}

MessageMatcher HasField(std::string path) {
  return ::testing::MakeMatcher(new HasFieldMatcher(
      std::move(path), HasFieldMatcher::Kind::kPresent, ::testing::_, 0, false));
}
MessageMatcher HasField(std::string path, ::testing::Matcher<std::string> text) {
  return ::testing::MakeMatcher(new HasFieldMatcher(std::move(path), HasFieldMatcher::Kind::kText,
                                                    std::move(text), 0, false));
}
MessageMatcher HasField(std::string path, const char* text) {
  return HasField(std::move(path), ::testing::Matcher<std::string>(std::string(text)));
}
MessageMatcher HasField(std::string path, bool value) {
  return ::testing::MakeMatcher(
      new HasFieldMatcher(std::move(path), HasFieldMatcher::Kind::kBool, ::testing::_, 0, value));
}
MessageMatcher HasFieldNumber(std::string path, double value) {
  return ::testing::MakeMatcher(new HasFieldMatcher(std::move(path), HasFieldMatcher::Kind::kNumber,
                                                    ::testing::_, value, false));
}

MessageMatcher MessageLikeAll(std::string pattern, std::vector<MessageMatcher> inner) {
  return ::testing::MakeMatcher(new MessageLikeMatcher(std::move(pattern), std::move(inner)));
}

ReplyMatcher IsOkReplyAll(std::vector<MessageMatcher> inner) {
  return ::testing::MakeMatcher(new OkReplyMatcher(std::move(inner)));
}
ReplyMatcher IsErrorReplyMatcher(Code code, ::testing::Matcher<std::string> message) {
  return ::testing::MakeMatcher(new ErrorReplyMatcher(code, std::move(message)));
}

::testing::PolymorphicMatcher<SentMatcher> SentCount(std::string pattern, size_t count) {
  return ::testing::MakePolymorphicMatcher(
      SentMatcher(SentMatcher::Mode::kCount, {MessageLike(pattern)}, pattern, count));
}

bool SentMatcher::Match(const std::vector<Message>& messages, MatchResultListener* listener) const {
  switch (mode_) {
    case Mode::kAny: {
      for (size_t i = 0; i < messages.size(); ++i) {
        if (matchers_[0].Matches(messages[i])) {
          *listener << "message #" << i << " matches";
          return true;
        }
      }
      *listener << "none of the " << messages.size() << " captured message(s) matches:";
      ListMessages(messages, &matchers_[0], listener);
      return false;
    }
    case Mode::kInOrder: {
      size_t step = 0;
      std::vector<size_t> at;
      for (size_t i = 0; i < messages.size() && step < matchers_.size(); ++i) {
        if (matchers_[step].Matches(messages[i])) {
          at.push_back(i);
          ++step;
        }
      }
      if (step == matchers_.size()) {
        *listener << "matched in order at";
        for (size_t i : at) *listener << " #" << i;
        return true;
      }
      *listener << "step " << step + 1 << " of " << matchers_.size() << " ("
                << DescribeText(matchers_[step]) << ") was not sent";
      if (!at.empty()) *listener << " after message #" << at.back();
      *listener << "; captured:";
      ListMessages(messages, &matchers_[step], listener);
      return false;
    }
    case Mode::kCount: {
      size_t n = 0;
      for (const auto& m : messages) n += matchers_[0].Matches(m) ? 1 : 0;
      *listener << n << " captured message(s) route as '" << pattern_ << "'";
      if (n != count_) {
        *listener << "; captured:";
        ListMessages(messages, nullptr, listener);
      }
      return n == count_;
    }
  }
  return false;
}

void SentMatcher::DescribeTo(std::ostream* os) const {
  switch (mode_) {
    case Mode::kAny:
      *os << "has sent ";
      matchers_[0].DescribeTo(os);
      break;
    case Mode::kInOrder:
      *os << "has sent, in this order:";
      for (size_t i = 0; i < matchers_.size(); ++i) {
        *os << "\n    " << i + 1 << ". ";
        matchers_[i].DescribeTo(os);
      }
      break;
    case Mode::kCount:
      *os << "has sent exactly " << count_ << " message(s) routed as '" << pattern_ << "'";
      break;
  }
}

void SentMatcher::DescribeNegationTo(std::ostream* os) const {
  *os << "not (";
  DescribeTo(os);
  *os << ")";
}

}  // namespace shardkit::testing
