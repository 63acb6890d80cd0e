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

#include <rapidjson/document.h>

#include "shardkit/message/status.h"

namespace shardkit {

// Appends `value` as a quoted, escaped JSON string. `value` must be UTF-8.
void AppendJsonString(std::string_view value, std::string& out);

// Parses `text` as one JSON value into a DOM (full validation, UTF-8 checked). `what` names the
// field in the error: ParseJson(q, "q") -> "invalid: q: malformed JSON at offset 3: …".
Result<rapidjson::Document> ParseJson(std::string_view text, std::string_view what);

// Compact JSON text of a RapidJSON value.
std::string ToJsonText(const rapidjson::Value& value);

}  // namespace shardkit
