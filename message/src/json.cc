#include "shardkit/message/json.h"

#include <cmath>
#include <iterator>

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include "raw_control.h"

namespace shardkit {

bool IsUtf8(std::string_view text) { return simdjson::validate_utf8(text.data(), text.size()); }

namespace {

// What RapidJSON 1.1 accepts but cannot write back as JSON: a number just past the largest
// double (5e308) parses as infinity, at which its Writer stops mid-value, and the escape of a
// lone low surrogate (\udc00-\udfff) decodes to bytes that are not UTF-8.
// `strings`: whether a string may hold such an escape at all (most texts have none, and checking
// every string again cost a few percent of a command's parse).
bool Writable(const rapidjson::Value& value, bool strings) {
  if (value.IsDouble()) return std::isfinite(value.GetDouble());
  if (value.IsString()) return !strings || IsUtf8({value.GetString(), value.GetStringLength()});
  if (value.IsArray()) {
    for (const auto& item : value.GetArray())
      if (!Writable(item, strings)) return false;
  } else if (value.IsObject()) {
    for (const auto& member : value.GetObject())
      if (!Writable(member.name, strings) || !Writable(member.value, strings)) return false;
  }
  return true;
}

}  // namespace

Result<rapidjson::Document> ParseJson(std::string_view text, std::string_view what) {
  if (size_t at = internal::FindUnscannedControl(text); at != std::string_view::npos) {
    return Status::Invalid(fmt::format(
        "{}: malformed JSON at offset {}: a control character must be escaped in a string", what,
        at));
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    return Status::Invalid(fmt::format("{}: malformed JSON at offset {}: {}", what,
                                       doc.GetErrorOffset(),
                                       rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!Writable(doc, internal::HasSurrogateEscape(text))) {
    return Status::Invalid(fmt::format(
        "{}: a number out of the range of a double, or a string escaping a lone UTF-16 surrogate",
        what));
  }
  return doc;
}

std::string ToJsonText(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return WrittenJson(buffer);
}

std::string WrittenJson(const rapidjson::StringBuffer& buffer) {
  std::string_view text(buffer.GetString(), buffer.GetSize());
  size_t at = internal::FindUnscannedControl(text);
  if (at == std::string_view::npos) return std::string(text);
  // Outside a string the writer emits no control byte, so each one found is inside a string.
  std::string out(text.substr(0, at));
  for (; at < text.size(); ++at) {
    const auto c = static_cast<uint8_t>(text[at]);
    if (c >= 0x1a && c <= 0x1f) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    } else {
      out += text[at];
    }
  }
  return out;
}

}  // namespace shardkit

namespace shardkit {

void JsonObject::Name(std::string_view name) {
  if (text_.size() > 1) text_ += ',';
  AppendJsonString(name, text_);
  text_ += ':';
}

JsonObject& JsonObject::Add(std::string_view name, std::string_view value) {
  Name(name);
  AppendJsonString(value, text_);
  return *this;
}

JsonObject& JsonObject::AddBool(std::string_view name, bool value) {
  Name(name);
  text_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::AddDouble(std::string_view name, double value) {
  Name(name);
  if (std::isfinite(value)) {
    fmt::format_to(std::back_inserter(text_), "{}", value);
  } else {
    text_ += "null";
  }
  return *this;
}

JsonObject& JsonObject::Add(std::string_view name, const JsonObject& object) {
  return AddRaw(name, object.str());
}

JsonObject& JsonObject::AddRaw(std::string_view name, std::string_view json) {
  Name(name);
  text_ += json;
  return *this;
}

std::string JsonStringArray(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(values[i], out);
  }
  return out + ']';
}

}  // namespace shardkit
