#include "shardkit/services/endpoint.h"

#include <charconv>

#include <fmt/format.h>

namespace shardkit::services {

std::string Endpoint::ToString() const {
  switch (scheme) {
    case Scheme::kTcp:
      return fmt::format("{}://{}:{}", tls ? "tls" : "tcp", host, port);
    case Scheme::kHttp:
      return fmt::format("{}://{}:{}", tls ? "https" : "http", host, port);
    case Scheme::kInproc:
      return fmt::format("inproc://{}", name);
    case Scheme::kNats: {
      if (credentials.empty()) return fmt::format("nats://{}:{}", host, port);
      size_t colon = credentials.find(':');
      std::string shown =
          colon == std::string::npos ? "***" : credentials.substr(0, colon + 1) + "***";
      return fmt::format("nats://{}@{}:{}", shown, host, port);
    }
  }
  return {};
}

std::string Endpoint::ToSecretString() const {
  if (scheme != Scheme::kNats || credentials.empty()) return ToString();
  return fmt::format("nats://{}@{}:{}", credentials, host, port);
}

std::string Shown(std::string_view text) {
  if (!LooksLikeUrl(text)) return std::string(text);
  auto endpoint = ParseEndpoint(text);
  if (endpoint.ok()) return endpoint->ToString();
  return text.find('@') == std::string_view::npos ? std::string(text) : "(a URL with credentials)";
}

bool LooksLikeUrl(std::string_view text) { return text.find("://") != std::string_view::npos; }

Result<Endpoint> ParseEndpoint(std::string_view url) {
  Endpoint endpoint;
  std::string redacted;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return Status::Invalid(fmt::format(
        "'{}' is not a URL (tcp://host:port, http://host:port, tls://host:port, https://host:port, "
        "nats://host:port or inproc://name)",
        url));
  }
  std::string_view scheme = url.substr(0, sep);
  std::string_view rest = url.substr(sep + 3);
  if (scheme == "tcp") {
    endpoint.scheme = Scheme::kTcp;
  } else if (scheme == "http") {
    endpoint.scheme = Scheme::kHttp;
  } else if (scheme == "tls" || scheme == "https") {
    endpoint.scheme = scheme == "tls" ? Scheme::kTcp : Scheme::kHttp;
    endpoint.tls = true;
  } else if (scheme == "nats") {
    endpoint.scheme = Scheme::kNats;
  } else if (scheme == "inproc") {
    endpoint.scheme = Scheme::kInproc;
    if (rest.empty() || rest.find_first_of("/:? ") != std::string_view::npos) {
      return Status::Invalid(fmt::format("'{}': inproc:// needs a plain name", url));
    }
    endpoint.name = std::string(rest);
    return endpoint;
  } else {
    return Status::Invalid(fmt::format(
        "'{}': unsupported scheme '{}' (tcp://, http://, tls://, https://, nats:// or inproc://)",
        url, scheme));
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    // Never echo the URL from here on: it holds a secret.
    if (endpoint.scheme != Scheme::kNats)
      return Status::Invalid(fmt::format(
          "'{}://…@…': credentials in the URL are for nats:// only (a tcp://, http://, tls:// or "
          "https:// listener takes a `token`)",
          scheme));
    if (at == 0) return Status::Invalid("nats URL: empty credentials before '@'");
    endpoint.credentials = std::string(rest.substr(0, at));
    if (endpoint.credentials.front() == ':')
      return Status::Invalid("nats URL: credentials have a password but no user before ':'");
    rest = rest.substr(at + 1);
    redacted = "nats://***@" + std::string(rest);
    url = redacted;  // for the errors below
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::Invalid(fmt::format("'{}': expected host:port", url));
  }
  std::string_view host = rest.substr(0, colon);
  std::string_view port = rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return Status::Invalid(
        fmt::format("'{}': port '{}' is not a number from 0 to 65535", url, port));
  }
  endpoint.host = std::string(host);
  endpoint.port = static_cast<uint16_t>(value);
  return endpoint;
}

}  // namespace shardkit::services
