// Internal: what the HTTP listener makes of a POST /act request, apart from its connection, so
// that the request path can be exercised without a socket (fuzz/http_request_fuzz.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "access.h"
#include "shardkit/message/message.h"
#include "shardkit/message/status.h"
#include "shardkit/services/config.h"

namespace shardkit::services {

// The most header bytes the listener's parser accepts (Beast's request_parser::header_limit); the
// body's limit is ListenerConfig::max_message_bytes.
inline constexpr size_t kHttpHeaderLimit = 16 * 1024;

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Who sent `request` (access.h): its Bearer token, or the password of Basic credentials (a
// browser's); nullopt when the listener asks for a token and none of its tokens matches.
std::optional<Caller> HttpCaller(const HttpRequest& request, const ListenerConfig& config,
                                 std::string peer);

// The message a POST /act request carries: refused when `caller` is nullopt (a wrong token);
// `body` (the request's, or what a Seneca web transport's wrapper held) parsed within
// max_message_bytes; the seneca-id and Idempotency-Key headers applied where the body gives none;
// then admitted for `caller` (AdmitIncoming: its role, the listener's allow list). An error is the
// reply to send.
Result<Message> ActRequestMessage(const HttpRequest& request, std::string_view body,
                                  const std::optional<Caller>& caller, const ListenerConfig& config,
                                  const ListenerHooks& hooks, int64_t now_ms);

}  // namespace shardkit::services
