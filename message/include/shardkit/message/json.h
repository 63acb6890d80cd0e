// Small JSON helpers shared by the codec and by handlers that read or build nested data.
//
// Nested message data (an entity, a query) is kept as JSON text; a handler that needs its structure
// parses it with ParseJson (RapidJSON DOM) and writes new text with a rapidjson::Writer or
// AppendJsonString. nlohmann::json is deliberately not used on the message path (docs/codec.md).
//
// Thread-safety: free functions without shared state.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include "shardkit/message/status.h"

namespace shardkit {

// Appends `value` as a quoted, escaped JSON string. `value` must be UTF-8.
void AppendJsonString(std::string_view value, std::string& out);

// Whether `text` is valid UTF-8, as every JSON text and string must be (vectorised, simdjson).
bool IsUtf8(std::string_view text);

// Parses `text` as one JSON value into a DOM (full validation, UTF-8 checked). `what` names the
// field in the error: ParseJson(q, "q") -> "invalid: q: malformed JSON at offset 3: …".
Result<rapidjson::Document> ParseJson(std::string_view text, std::string_view what);

// Compact JSON text of a RapidJSON value.
std::string ToJsonText(const rapidjson::Value& value);
// The text a rapidjson::Writer wrote into `buffer`, as JSON: RapidJSON 1.1's SSE2 string writer,
// like its reader, takes bytes 0x1a-0x1f for text (it tests c <= 0x19) and writes them raw, which
// no JSON parser reads back; they are escaped here. Every Writer's output goes through this.
std::string WrittenJson(const rapidjson::StringBuffer& buffer);

// JsonObject: JSON text built by hand (error details, small replies, change-record values), the
// one way shardkit writes it. Names and string values are always escaped, so a shard name, an id
// or a field path can never break the text around it.
//
//   JsonObject().Add("epoch", 7).Add("shard", name).str()        -> {"epoch":7,"shard":"-80"}
//   JsonObject().Add("to", JsonObject().Add("40-60", 12)).str()  -> {"to":{"40-60":12}}
class JsonObject {
 public:
  JsonObject& Add(std::string_view name, std::string_view value);  // a JSON string
  JsonObject& Add(std::string_view name, const char* value) {
    return Add(name, std::string_view(value));
  }
  template <typename Int>
  requires std::is_integral_v<Int> &&
      (!std::is_same_v<Int, bool>)JsonObject& Add(std::string_view name, Int value) {
    Name(name);
    text_ += std::to_string(value);
    return *this;
  }
  JsonObject& AddBool(std::string_view name, bool value);
  // A finite number in its shortest exact form; NaN and infinities become null.
  JsonObject& AddDouble(std::string_view name, double value);
  JsonObject& Add(std::string_view name, const JsonObject& object);
  // `json` must be valid JSON text (an array or value built elsewhere).
  JsonObject& AddRaw(std::string_view name, std::string_view json);
  bool empty() const { return text_.size() == 1; }
  std::string str() const { return text_ + '}'; }

 private:
  void Name(std::string_view name);
  std::string text_ = "{";
};

// A JSON array of strings, each escaped: ["a","b"].
std::string JsonStringArray(const std::vector<std::string>& values);

}  // namespace shardkit
