#include "shardkit/message/codec.h"

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stream.h>

#include <array>
#include <charconv>
#include <cstring>

#include "raw_control.h"
#include "shardkit/message/json.h"

namespace shardkit {
namespace {

constexpr std::string_view kMetaName = "meta$";
constexpr std::string_view kErrorName = "error$";

// SAX handler building the flat view. Nested values are recorded as [start, end) slices of the
// input, using the stream position the reader has reached when it reports StartX/EndX.
class FlatBuilder {
 public:
  // `surrogates`: whether the text escapes a surrogate at all (CheckEscapes).
  FlatBuilder(rapidjson::InsituStringStream& stream, const char* base, const CodecLimits& limits,
              bool surrogates, Message& out)
      : stream_(stream), base_(base), limits_(limits), surrogates_(surrogates), out_(out) {}

  bool Null() { return Scalar(ValueType::kNull, "null"); }
  bool Bool(bool b) { return Scalar(ValueType::kBool, b ? "true" : "false"); }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    return Scalar(ValueType::kNumber, std::string_view(str, length));
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    if (!CheckEscapes(str, length)) return false;
    return Scalar(ValueType::kString, std::string_view(str, length));
  }
  // Unused with kParseNumbersAsStringsFlag, but the reader's concept requires them.
  bool Int(int) { return true; }
  bool Uint(unsigned) { return true; }
  bool Int64(int64_t) { return true; }
  bool Uint64(uint64_t) { return true; }
  bool Double(double) { return true; }

  bool StartObject() { return Start(ValueType::kObject); }
  bool StartArray() { return Start(ValueType::kArray); }
  bool EndObject(rapidjson::SizeType) { return End(); }
  bool EndArray(rapidjson::SizeType) { return End(); }

  bool Key(const char* str, rapidjson::SizeType length, bool) {
    if (!CheckEscapes(str, length)) return false;
    // Views into the in-situ buffer, which holds the decoded text until the parse ends.
    if (depth_ == 1) {
      key_ = std::string_view(str, length);
      return true;
    }
    if (in_meta_ && depth_ == 2) meta_key_ = std::string_view(str, length);
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  // RapidJSON 1.1 decodes the escape of a lone low surrogate (\udc00-\udfff) to the bytes
  // ED B0..BF xx, which are not UTF-8: the message would print as JSON nobody reads back. The
  // input is valid UTF-8 (checked before parsing), so only an escape puts them there, in a
  // string of any depth (a nested value keeps its raw text and is decoded again by its service).
  bool CheckEscapes(const char* str, size_t length) {
    if (!surrogates_) return true;
    const char* const stop = str + length;
    for (const char* p = str; (p = static_cast<const char*>(std::memchr(p, '\xed', stop - p)));) {
      if (++p < stop && static_cast<unsigned char>(*p) >= 0xa0) {
        return Fail(
            "malformed JSON: a string escapes a lone UTF-16 surrogate (\\udc00-\\udfff "
            "without its pair)");
      }
    }
    return true;
  }

  bool Scalar(ValueType type, std::string_view text) {
    if (depth_ == 0) return Fail("a message must be a JSON object, not a scalar");
    if (depth_ == 1) return AddProperty(Value{type, text});
    if (in_meta_ && depth_ == 2) return SetMeta(type, text);
    return true;
  }

  bool Start(ValueType type) {
    if (depth_ == 0 && type != ValueType::kObject) {
      return Fail("a message must be a JSON object, not an array");
    }
    ++depth_;
    if (depth_ > limits_.max_depth) {
      return Fail(fmt::format("nesting deeper than the limit of {} levels", limits_.max_depth));
    }
    if (depth_ == 2) {
      nested_start_ = stream_.Tell() - 1;
      nested_type_ = type;
      if (key_ == kMetaName) {
        if (type != ValueType::kObject) return Fail("meta$: must be an object");
        in_meta_ = true;
      }
    }
    return true;
  }

  bool End() {
    if (depth_ == 2) {
      if (in_meta_) {
        in_meta_ = false;
        --depth_;
        return true;
      }
      size_t end = stream_.Tell();
      --depth_;
      return AddProperty(
          Value{nested_type_, std::string_view(base_ + nested_start_, end - nested_start_)});
    }
    --depth_;
    return true;
  }

  bool AddProperty(const Value& value) {
    if (key_ == kMetaName) return Fail("meta$: must be an object");
    if (out_.size() >= limits_.max_properties) {
      return Fail(fmt::format("more than {} top-level properties", limits_.max_properties));
    }
    if (out_.Has(key_)) return Fail(fmt::format("duplicate property '{}'", key_));
    out_.Append(key_, value);
    return true;
  }

  bool SetMeta(ValueType type, std::string_view text) {
    Meta& meta = out_.meta();
    auto want_string = [&](std::string& field) {
      if (type != ValueType::kString)
        return Fail(fmt::format("meta$.{}: must be a string", meta_key_));
      field.assign(text);
      return true;
    };
    auto want_integer = [&](auto& field) {
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), field);
      if (type != ValueType::kNumber || ec != std::errc() || ptr != text.data() + text.size()) {
        return Fail(fmt::format("meta$.{}: must be an integer", meta_key_));
      }
      return true;
    };
    if (meta_key_ == "id") return want_string(meta.id);
    if (meta_key_ == "trace") return want_string(meta.trace);
    if (meta_key_ == "parent") return want_string(meta.parent);
    if (meta_key_ == "deadline") return want_integer(meta.deadline);
    if (meta_key_ == "hops") return want_integer(meta.hops);
    if (meta_key_ == "idempotency_key") return want_string(meta.idempotency_key);
    return true;  // other meta$ members are not kept
  }

  rapidjson::InsituStringStream& stream_;
  const char* base_;
  const CodecLimits& limits_;
  const bool surrogates_;
  Message& out_;
  int depth_ = 0;
  std::string_view key_;
  std::string_view meta_key_;
  bool in_meta_ = false;
  size_t nested_start_ = 0;
  ValueType nested_type_ = ValueType::kObject;
  std::string error_;
};

// Characters that need escaping in a JSON string: '"', '\\' and control characters.
constexpr std::array<bool, 256> MakeEscapeTable() {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = true;
  table['"'] = true;
  table['\\'] = true;
  return table;
}
constexpr std::array<bool, 256> kNeedsEscape = MakeEscapeTable();

// The JSON escape of one byte that kNeedsEscape marks.
[[gnu::noinline]] void AppendEscaped(unsigned char c, std::string& out) {
  switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default:
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
      break;
  }
}

void AppendValue(const Value& value, std::string& out) {
  if (value.type == ValueType::kString) {
    AppendJsonString(value.text, out);
  } else {
    out += value.text;
  }
}

void AppendMeta(const Meta& meta, std::string& out) {
  out += "\"meta$\":{";
  bool first = true;
  auto separator = [&] {
    if (!first) out += ',';
    first = false;
  };
  auto string_field = [&](std::string_view name, const std::string& value) {
    if (value.empty()) return;
    separator();
    out += '"';
    out += name;
    out += "\":";
    AppendJsonString(value, out);
  };
  string_field("id", meta.id);
  string_field("trace", meta.trace);
  string_field("parent", meta.parent);
  if (meta.deadline != 0) {
    separator();
    fmt::format_to(std::back_inserter(out), "\"deadline\":{}", meta.deadline);
  }
  if (meta.hops != 0) {
    separator();
    fmt::format_to(std::back_inserter(out), "\"hops\":{}", meta.hops);
  }
  string_field("idempotency_key", meta.idempotency_key);
  out += '}';
}

}  // namespace

void AppendJsonString(std::string_view value, std::string& out) {
  out += '"';
  // The scan for the next byte to escape is a loop of its own and the escaping a call: with the
  // switch inline, GCC 12 reloaded the table's address on every byte.
  const char* p = value.data();
  const char* const end = p + value.size();
  for (;;) {
    const char* run = p;
    while (p != end && !kNeedsEscape[static_cast<unsigned char>(*p)]) ++p;
    out.append(run, p - run);
    if (p == end) break;
    AppendEscaped(static_cast<unsigned char>(*p++), out);
  }
  out += '"';
}

Result<Message> ParseMessage(std::string_view json, const CodecLimits& limits) {
  if (json.size() > limits.max_bytes) {
    return Status::Invalid(fmt::format("message of {} bytes is larger than the limit of {} bytes",
                                       json.size(), limits.max_bytes));
  }
  // UTF-8 is checked by simdjson's vectorised validator, much faster than RapidJSON's per-character
  // transcoding check, so the reader below runs without kParseValidateEncodingFlag.
  if (!IsUtf8(json)) {
    return Status::Invalid("malformed JSON: the text is not valid UTF-8 (invalid encoding)");
  }
  if (size_t at = internal::FindUnscannedControl(json); at != std::string_view::npos) {
    return Status::Invalid(fmt::format(
        "malformed JSON at offset {}: a control character must be escaped in a string", at));
  }
  Message message;
  // One block for the properties: their names and texts are at most the text's bytes.
  message.Reserve(8, json.size());
  // RapidJSON's vectorised string scanning needs a NUL-terminated, writable buffer (in-situ
  // parsing decodes strings where they stand). Token positions do not move, so slices for nested
  // values are taken from the caller's untouched text at the same offsets.
  // The padding matters: RapidJSON's SSE2 scanning reads whole aligned 16-byte blocks, up to 15
  // bytes past the terminating NUL; they must belong to the buffer.
  thread_local std::string scratch;
  scratch.assign(json.data(), json.size());
  scratch.resize(json.size() + 16, '\0');
  rapidjson::InsituStringStream stream(scratch.data());
  FlatBuilder builder(stream, json.data(), limits, internal::HasSurrogateEscape(json), message);
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseInsituFlag;
  rapidjson::ParseResult ok = reader.Parse<kFlags>(stream, builder);
  if (!ok) {
    if (!builder.error().empty()) return Status::Invalid(builder.error());
    return Status::Invalid(fmt::format("malformed JSON at offset {}: {}", ok.Offset(),
                                       rapidjson::GetParseError_En(ok.Code())));
  }
  const size_t end = stream.Tell();
  if (scratch.capacity() > (size_t{1} << 20))
    std::string().swap(scratch);  // don't keep a huge buffer
  // The reader stops at a NUL byte as if the text ended there.
  if (end != json.size()) {
    return Status::Invalid(fmt::format("malformed JSON at offset {}: unexpected NUL byte", end));
  }
  return message;
}

void AppendJson(const Message& message, std::string& out) {
  out += '{';
  bool first = true;
  for (const Property& p : message.properties()) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(p.name, out);
    out += ':';
    AppendValue(p.value, out);
  }
  if (!message.meta().empty()) {
    if (!first) out += ',';
    AppendMeta(message.meta(), out);
  }
  out += '}';
}

std::string ToJson(const Message& message) {
  std::string out;
  out.reserve(128);
  AppendJson(message, out);
  return out;
}

Message ErrorMessage(const Status& status) {
  std::string error = "{\"code\":";
  AppendJsonString(CodeName(status.code()), error);
  error += ",\"message\":";
  AppendJsonString(status.message(), error);
  if (!status.details_json().empty()) {
    error += ",\"details\":";
    error += status.details_json();
  }
  error += '}';
  Message message;
  message.SetObjectJson(kErrorName, error);
  return message;
}

Message ToWire(Result<Message> reply) {
  if (reply.ok()) return std::move(reply).value();
  return ErrorMessage(reply.status());
}

Result<Message> FromWire(Message wire) {
  const Value* error = wire.Find(kErrorName);
  if (error == nullptr) return wire;
  if (error->type != ValueType::kObject) {
    return Status::Internal("reply has an error$ that is not an object");
  }
  auto doc = ParseJson(error->text, "error$");
  if (!doc.ok()) return Status::Internal(doc.status().message());
  const rapidjson::Document& d = *doc;
  auto code_it = d.FindMember("code");
  if (code_it == d.MemberEnd() || !code_it->value.IsString()) {
    return Status::Internal("reply has an error$ without a string code");
  }
  std::optional<Code> code = CodeFromName(code_it->value.GetString());
  if (!code || *code == Code::kOk) {
    return Status::Internal(
        fmt::format("reply has an error$ with unknown code '{}'", code_it->value.GetString()));
  }
  std::string message;
  auto message_it = d.FindMember("message");
  if (message_it != d.MemberEnd() && message_it->value.IsString()) {
    message = message_it->value.GetString();
  }
  std::string details;
  auto details_it = d.FindMember("details");
  if (details_it != d.MemberEnd() && details_it->value.IsObject()) {
    details = ToJsonText(details_it->value);
  }
  return Status(*code, std::move(message), std::move(details));
}

}  // namespace shardkit
