// Internal: what the HTTP listener makes of a POST /act request, apart from its connection, so
// that the request path can be exercised without a socket (fuzz/http_request_fuzz.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "shardkit/message/message.h"
#include "shardkit/message/status.h"
#include "shardkit/services/config.h"

namespace shardkit::services {

// The most header bytes the listener's parser accepts (Beast's request_parser::header_limit); the
// body's limit is ListenerConfig::max_message_bytes.
inline constexpr size_t kHttpHeaderLimit = 16 * 1024;

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

// The message a POST /act request carries: the bearer token checked when the listener has one,
// the body parsed within max_message_bytes, the seneca-id and Idempotency-Key headers applied
// where the body gives none, then admitted (AdmitIncoming). An error is the reply to send.
Result<Message> ActRequestMessage(const HttpRequest& request, const ListenerConfig& config,
                                  int64_t now_ms);

}  // namespace shardkit::services
