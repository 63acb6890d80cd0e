// Internal: who may do what on a listener (docs/security.md).
//
// A caller is who presented which token: on a listener with tokens, the named [[token]] (or the
// unnamed `token`, named "listener") whose secret matches; on a listener without, "anonymous".
// Its role is the token's (the unnamed token: client when external, else admin; anonymous:
// client when external, else admin, as before roles existed).
//
// A message is admitted when:
//   - the listener's allow list is empty or one of its patterns matches it, and
//   - it is data, or it is an operation (the node's services declare which, plus sys:* but for
//     Seneca's sys:entity) and the
//     caller is admin and the listener is internal or lists it in `allow`.
// Every operation refused, and every one admitted for a token, is audited with the token's name.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "shardkit/message/message.h"
#include "shardkit/message/status.h"
#include "shardkit/services/config.h"

namespace shardkit::services {

struct ListenerHooks;

inline constexpr std::string_view kAnonymous = "anonymous";  // the caller where no token is asked

struct Caller {
  std::string token;  // the token's name, "listener" or "anonymous"
  Role role = Role::kClient;
  std::string peer;  // the remote address, when known
};

// One audited operation.
struct AuditRecord {
  std::string listener;  // its URL
  const Caller* caller = nullptr;
  std::string message;  // the routing properties (Message::RoutingString)
  std::string refused;  // empty: admitted; else the refusal's message
};

// Whether the listener asks for a token at all.
bool RequiresToken(const ListenerConfig& config);
// The caller of a listener that asks for no token.
Caller AnonymousCaller(const ListenerConfig& config, std::string peer = {});
// The caller presenting `secret`, or nullopt when no token of the listener matches.
std::optional<Caller> Authenticate(const ListenerConfig& config, std::string_view secret,
                                   std::string peer = {});
// The secret an HTTP Authorization header presents: a Bearer token, or the password of Basic
// credentials (what a browser asks for); empty when it is neither.
std::string SecretOf(std::string_view authorization);
// Admits or refuses `message` from `caller` (see above); audits operations through the hooks.
// A refusal is `invalid` with details {"http_status":403} and says why and what would serve it.
Status Authorize(const Message& message, const Caller& caller, const ListenerConfig& config,
                 const ListenerHooks& hooks);
// Whether `caller` may read the node's metrics and /health details: as a sys:stats message.
bool MayReadStats(const Caller& caller, const ListenerConfig& config, const ListenerHooks& hooks);
// The refusal's status code (details), for HttpStatusFor.
inline constexpr std::string_view kForbiddenDetails = "{\"http_status\":403}";

}  // namespace shardkit::services
