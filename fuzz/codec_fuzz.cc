// The message codec: any bytes to ParseMessage. A message it accepts must print as JSON that
// parses back to the same text; an error must become a wire error that is itself valid JSON.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <shardkit/message/codec.h>

#include "check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  shardkit::CodecLimits limits;
  limits.max_bytes = 64 * 1024;  // the same checks as the 16 MiB default, at fuzzing sizes
  limits.max_depth = 16;
  limits.max_properties = 64;
  shardkit::Result<shardkit::Message> parsed = shardkit::ParseMessage(text, limits);
  if (!parsed.ok()) {
    FUZZ_CHECK(
        shardkit::ParseMessage(shardkit::ToJson(shardkit::ErrorMessage(parsed.status()))).ok());
    return 0;
  }
  const std::string json = shardkit::ToJson(*parsed);
  shardkit::Result<shardkit::Message> again = shardkit::ParseMessage(json);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(shardkit::ToJson(*again) == json);
  // A reply as a client reads it: an "error$" that is not a well-formed error is a Status too.
  shardkit::Result<shardkit::Message> reply = shardkit::FromWire(std::move(parsed).value());
  if (!reply.ok())
    FUZZ_CHECK(
        shardkit::ParseMessage(shardkit::ToJson(shardkit::ErrorMessage(reply.status()))).ok());
  return 0;
}
