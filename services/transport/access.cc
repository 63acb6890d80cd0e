#include "access.h"

#include <fmt/format.h>

#include "shardkit/message/pattern.h"
#include "wire.h"

namespace shardkit::services {
namespace {

Role DefaultRole(const ListenerConfig& config) {
  return config.external ? Role::kClient : Role::kAdmin;
}

bool Allowed(const Message& message, const ListenerConfig& config) {
  for (const std::string& text : config.allow) {
    auto pattern = Pattern::Parse(text);  // checked when the config was read
    if (pattern.ok() && pattern->Matches(message)) return true;
  }
  return false;
}

Status Forbidden(std::string text) {
  return Status::Invalid(std::move(text), std::string(kForbiddenDetails));
}

// The refusal of `message` for `caller`, or OK; `operation`: the node classes it as one.
Status Check(const Message& message, bool operation, const Caller& caller,
             const ListenerConfig& config) {
  if (!config.allow.empty() && !Allowed(message, config))
    return Forbidden(fmt::format("forbidden: '{}' is not served on this listener (it serves {})",
                                 message.RoutingString(), fmt::join(config.allow, ", ")));
  if (!operation) return Status::Ok();
  std::string what = message.RoutingString();
  if (config.external && config.allow.empty())
    return Forbidden(fmt::format(
        "forbidden: '{}' is an operation; an external listener serves operations only when its "
        "allow list names them",
        what));
  if (caller.role != Role::kAdmin)
    return Forbidden(fmt::format(
        "forbidden: '{}' is an operation and the token '{}' has the role client (operations need "
        "an admin token)",
        what, caller.token));
  return Status::Ok();
}

}  // namespace

bool RequiresToken(const ListenerConfig& config) {
  return !config.token.empty() || !config.tokens.empty();
}

Caller AnonymousCaller(const ListenerConfig& config, std::string peer) {
  return Caller{std::string(kAnonymous), DefaultRole(config), std::move(peer)};
}

std::optional<Caller> Authenticate(const ListenerConfig& config, std::string_view secret,
                                   std::string peer) {
  // Every token is compared, so the time taken does not tell which one nearly matched.
  std::optional<Caller> found;
  for (const TokenConfig& token : config.tokens) {
    if (TokenMatches(secret, token.secret) && !found) found = Caller{token.name, token.role, peer};
  }
  if (TokenMatches(secret, config.token) && !found)
    found = Caller{"listener", DefaultRole(config), peer};
  return found;
}

namespace {

std::string Base64Decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) break;  // '=' padding or the end
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return out;
}

}  // namespace

std::string SecretOf(std::string_view authorization) {
  constexpr std::string_view kBearer = "Bearer ", kBasic = "Basic ";
  if (authorization.starts_with(kBearer)) return std::string(authorization.substr(kBearer.size()));
  if (authorization.starts_with(kBasic)) {
    std::string pair = Base64Decode(authorization.substr(kBasic.size()));
    size_t colon = pair.find(':');
    return colon == std::string::npos ? std::string() : pair.substr(colon + 1);
  }
  return {};
}

Status Authorize(const Message& message, const Caller& caller, const ListenerConfig& config,
                 const ListenerHooks& hooks) {
  // sys:entity is Seneca's entity messages (the seneca-entity service type): data, not the
  // node's own sys:* operations.
  const bool seneca_entity = message.GetString("sys") == std::optional<std::string_view>("entity");
  bool operation =
      (message.Has("sys") && !seneca_entity) || (hooks.is_operation && hooks.is_operation(message));
  Status status = Check(message, operation, caller, config);
  // An operation admitted without a token has no one to name (an open internal listener, where
  // nodes poll feeds and maps): not audited, so the log does not fill with polls.
  bool audited = operation && (!status.ok() || caller.token != kAnonymous);
  if (audited && hooks.audit) {
    AuditRecord record{config.endpoint.ToString(), &caller, message.RoutingString(),
                       status.ok() ? std::string() : status.message()};
    hooks.audit(record);
  }
  return status;
}

bool MayReadStats(const Caller& caller, const ListenerConfig& config, const ListenerHooks&) {
  Message stats;
  stats.SetString("sys", "stats");
  return Check(stats, true, caller, config).ok();
}

}  // namespace shardkit::services
