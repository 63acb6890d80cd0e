// The codec: JSON text <-> Message, and the wire form of replies and errors.
//
// Parsing validates the whole text (RapidJSON SAX reader, UTF-8 checked) but builds only the flat
// top-level view of message.h: nested objects and arrays are kept as their original text slices,
// so a 170-byte message costs one pass and a handful of small copies (docs/codec.md has the
// measurements behind this choice).
//
// Rejected with Code::kInvalid, the message saying what is wrong: malformed JSON (with the byte
// offset), a root that is not an object, text larger than CodecLimits::max_bytes, nesting deeper
// than max_depth, more than max_properties top-level properties, a duplicate top-level property,
// a "meta$" that is not an object or has members of the wrong type.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "shardkit/message/message.h"
#include "shardkit/message/status.h"

namespace shardkit {

struct CodecLimits {
  size_t max_bytes = 16 * 1024 * 1024;  // whole message text
  int max_depth = 64;                   // the root object is depth 1
  size_t max_properties = 1024;         // top-level properties
};

// JSON text -> Message.
Result<Message> ParseMessage(std::string_view json, const CodecLimits& limits = {});

// Message -> compact JSON text (properties in order, then "meta$" when any meta field is set).
std::string ToJson(const Message& message);
void AppendJson(const Message& message, std::string& out);

// --- Replies on the wire ------------------------------------------------------------------------
// A successful reply is the reply message itself. An error is
//   {"error$":{"code":"not_found","message":"…","details":{…}}}
// plus "meta$" carrying the request id.

// Status -> the wire error message.
Message ErrorMessage(const Status& status);
// Reply result -> wire message (an error becomes ErrorMessage).
Message ToWire(Result<Message> reply);
// Wire message -> reply result: a message with "error$" becomes its Status; an "error$" that is
// not a well-formed error object becomes an `internal` Status saying so.
Result<Message> FromWire(Message wire);

}  // namespace shardkit
