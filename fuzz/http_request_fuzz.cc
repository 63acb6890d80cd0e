// The HTTP request path: raw bytes to Beast's request parser with the listener's header and body
// limits, then the listener's own step from a POST /act request to an admitted message
// (HttpCaller and ActRequestMessage: token, body, seneca-id and Idempotency-Key headers,
// admission by role). The first
// input byte picks the listener: internal or external, with or without a token. Properties: an
// admitted message prints as JSON that parses back; an error reply is valid JSON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include "check.h"
#include "http_request.h"
#include "wire.h"

namespace http = boost::beast::http;
namespace services = shardkit::services;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  services::ListenerConfig config;
  config.external = (data[0] & 1) != 0;
  if (data[0] & 2) config.token = "s3cret";
  config.max_message_bytes = 64 * 1024;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(config.max_message_bytes);
  parser.header_limit(services::kHttpHeaderLimit);
  boost::system::error_code ec;
  while (!bytes.empty() && !parser.is_done()) {
    const size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == http::error::need_more) break;
    if (ec) return 0;  // Beast refuses it: the listener closes (or answers 413)
    if (used == 0) break;
    bytes.remove_prefix(used);
  }
  if (!parser.is_done()) return 0;  // the listener waits for more, then times out
  const services::HttpRequest& request = parser.get();

  auto caller = services::HttpCaller(request, config, "fuzz");
  auto message = services::ActRequestMessage(request, request.body(), caller, config,
                                             services::ListenerHooks{}, 1'000'000);
  if (!message.ok()) {
    shardkit::Message wire = services::ReplyWire(message.status(), "r1");
    FUZZ_CHECK(shardkit::ParseMessage(shardkit::ToJson(wire)).ok());
    FUZZ_CHECK(services::HttpStatusFor(message.status()) >= 400);
    return 0;
  }
  // External: routing fields stripped, and no operation (sys:*, but Seneca's sys:entity, is one).
  if (config.external)
    FUZZ_CHECK((!message->Has("sys") || message->GetString("sys") == std::string_view("entity")) &&
               !message->Has("shard"));
  FUZZ_CHECK(message->meta().deadline <= 1'000'000 + config.request_timeout_ms);
  const std::string json = shardkit::ToJson(*message);
  FUZZ_CHECK(shardkit::ParseMessage(json).ok());
  return 0;
}
