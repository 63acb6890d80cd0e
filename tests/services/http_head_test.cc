// The HTTP listener writes a response's start line and fields itself (AppendResponseHead): the
// bytes must be those Beast's serializer writes for the same response built field by field, as
// the listener did before.
#include <boost/beast/http.hpp>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>

#include "http_request.h"

namespace shardkit::services {
namespace {

namespace http = boost::beast::http;
using Headers = std::vector<std::pair<std::string, std::string>>;

// The response as the listener used to build it, serialised by Beast.
std::string BeastResponse(const ResponseHead& head, const std::string& body) {
  http::response<http::string_body> response(static_cast<http::status>(head.status), head.version);
  response.set(http::field::server, "shardkit");
  response.set(http::field::content_type,
               boost::beast::string_view(head.content_type.data(), head.content_type.size()));
  response.set("seneca-kind", "res");
  if (!head.seneca_id.empty()) response.set("seneca-id", std::string(head.seneca_id));
  if (!head.seneca_origin.empty()) response.set("seneca-origin", std::string(head.seneca_origin));
  if (head.headers != nullptr) {
    for (const auto& [name, value] : *head.headers) response.set(name, value);
  }
  response.keep_alive(head.keep_alive);
  response.content_length(body.size());
  response.body() = body;
  std::ostringstream text;
  text << response;
  return text.str();
}

std::string OwnResponse(const ResponseHead& head, const std::string& body) {
  std::string text;
  AppendResponseHead(head, text);
  return text + body;
}

TEST(HttpResponseHeadTest, SameBytesAsBeastsSerializer) {
  const Headers console = {{"Content-Security-Policy", "default-src 'self'"},
                           {"X-Content-Type-Options", "nosniff"},
                           {"WWW-Authenticate", "Basic realm=\"shardkit console\""}};
  const std::string json = R"({"ent":{"id":"7"}})";
  struct Case {
    unsigned status, version;
    std::string_view type, seneca_id, seneca_origin;
    const Headers* headers;
    bool keep_alive;
    std::string body;
  };
  const std::vector<Case> cases = {
      {200, 11, "application/json", "", "", nullptr, true, json},
      {200, 11, "application/json", "", "", nullptr, false, json},
      {200, 10, "application/json", "", "", nullptr, true, json},
      {200, 10, "application/json", "", "", nullptr, false, json},
      {404, 11, "application/json", "", "", nullptr, true, "{}"},
      {413, 11, "application/json", "", "", nullptr, false, "{}"},
      {504, 11, "application/json", "abc", "o1", nullptr, true, "{}"},
      {200, 11, "text/plain; version=0.0.4", "", "", nullptr, true, "a 1\n"},
      {401, 11, "application/json", "", "", &console, true, "{}"},
      {200, 11, "text/html; charset=utf-8", "", "", &console, false, ""},
  };
  for (const Case& c : cases) {
    ResponseHead head{c.status,        c.version, c.type,       c.seneca_id,
                      c.seneca_origin, c.headers, c.keep_alive, c.body.size()};
    EXPECT_EQ(OwnResponse(head, c.body), BeastResponse(head, c.body))
        << "status " << c.status << ", HTTP/" << c.version / 10 << "." << c.version % 10
        << (c.keep_alive ? ", keep-alive" : ", close");
  }
}

}  // namespace
}  // namespace shardkit::services
