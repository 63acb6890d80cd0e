// Internal: what the HTTP listener makes of a POST /act request, apart from its connection, so
// that the request path can be exercised without a socket (fuzz/http_request_fuzz.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// A response's start line and fields, written straight into the text that goes out (building a
// Beast response and serialising it allocated each field): the bytes Beast's serializer writes
// for a response whose fields are set in this order: Server, Content-Type, seneca-kind,
// seneca-id and seneca-origin when not empty, `headers`, then keep-alive and Content-Length.
struct ResponseHead {
  unsigned status = 200;
  unsigned version = 11;  // 10: HTTP/1.0, 11: HTTP/1.1
  std::string_view content_type;
  std::string_view seneca_id;
  std::string_view seneca_origin;
  const std::vector<std::pair<std::string, std::string>>* headers = nullptr;  // each name once
  bool keep_alive = true;
  size_t body_bytes = 0;
};
void AppendResponseHead(const ResponseHead& head, std::string& out);

}  // namespace shardkit::services
