// What the HTTP edge does for Seneca callers (docs/seneca.md, "Errors").
//
// Two Seneca transports call POST /act:
// - seneca-transport's http client, known by its header `seneca-kind: req`. It hands the app the
//   reply body itself (an entity, null, an array). An error must come with a status that is not
//   200 and is below 400: at 400 and above its HTTP library throws first and the app gets only
//   "Response Error: 409 Conflict"; below 400 it copies the body's members onto the app's err.
// - Seneca's built-in web transport, known by the members Seneca puts in the body's meta$
//   (`seneca`, its version, and `instance`). It reads meta$.error (an error), meta$.empty (null)
//   and {"array$": […]} (an array).
// A reply {"seneca$": v} (the seneca-entity adapter's) is answered as v; other replies as they are.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "shardkit/message/message.h"
#include "shardkit/message/status.h"

namespace shardkit::services {

enum class SenecaCaller { kNone, kTransport, kWeb };

// The status a seneca-transport caller's error is answered with (see above).
inline constexpr int kSenecaTransportErrorStatus = 299;

// A body of Seneca's built-in web transport made a shardkit message body: meta$ dropped, its id in
// `id`. nullopt when `body` is not such a body.
std::optional<std::string> FromSenecaWeb(std::string_view body, std::string& id);

struct SenecaResponse {
  int status;
  std::string body;
};
// The HTTP answer to a Seneca caller. Errors carry code, message, details and statusCode (the
// status other callers get).
SenecaResponse ToSeneca(SenecaCaller caller, const Result<Message>& result, const std::string& id);

// A Seneca service's answer to a shardkit client (HTTP `status`, `body`): a message; null or an
// array as {"seneca$": …}; Seneca's error body ({"code","message",…}, status 500) as an error
// that keeps both: a shardkit code name stays that code, any other is `internal` with the
// Seneca code in details.code. nullopt when the body is none of these.
std::optional<Result<Message>> FromSenecaReply(unsigned status, std::string_view body);

}  // namespace shardkit::services
