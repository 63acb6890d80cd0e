#include "shardkit/message/json.h"

#include <cmath>
#include <iterator>

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace shardkit {

Result<rapidjson::Document> ParseJson(std::string_view text, std::string_view what) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    return Status::Invalid(fmt::format("{}: malformed JSON at offset {}: {}", what,
                                       doc.GetErrorOffset(),
                                       rapidjson::GetParseError_En(doc.GetParseError())));
  }
  return doc;
}

std::string ToJsonText(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
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
