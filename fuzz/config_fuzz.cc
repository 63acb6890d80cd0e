// The node's TOML config loader: any text to ParseNodeConfig, which parses (toml++) and validates
// it. It must answer a NodeConfig or an error; an error must fit in a valid JSON wire error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <shardkit/message/codec.h>
#include <shardkit/services/config.h>

#include "check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = shardkit::services::ParseNodeConfig(text, "fuzz.toml");
  if (!config.ok()) {
    FUZZ_CHECK(
        shardkit::ParseMessage(shardkit::ToJson(shardkit::ErrorMessage(config.status()))).ok());
    return 0;
  }
  for (const auto& listener : config->listeners) FUZZ_CHECK(listener.max_message_bytes > 0);
  return 0;
}
