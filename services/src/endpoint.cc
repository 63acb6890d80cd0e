#include "shardkit/services/endpoint.h"

#include <charconv>

#include <fmt/format.h>

namespace shardkit::services {

std::string Endpoint::ToString() const {
  switch (scheme) {
    case Scheme::kTcp:
      return fmt::format("tcp://{}:{}", host, port);
    case Scheme::kHttp:
      return fmt::format("http://{}:{}", host, port);
    case Scheme::kInproc:
      return fmt::format("inproc://{}", name);
    case Scheme::kNats:
      return fmt::format("nats://{}:{}", host, port);
  }
  return {};
}

bool LooksLikeUrl(std::string_view text) { return text.find("://") != std::string_view::npos; }

Result<Endpoint> ParseEndpoint(std::string_view url) {
  Endpoint endpoint;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return Status::Invalid(fmt::format(
        "'{}' is not a URL (tcp://host:port, http://host:port, nats://host:port or inproc://name)",
        url));
  }
  std::string_view scheme = url.substr(0, sep);
  std::string_view rest = url.substr(sep + 3);
  if (scheme == "tcp") {
    endpoint.scheme = Scheme::kTcp;
  } else if (scheme == "http") {
    endpoint.scheme = Scheme::kHttp;
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
        "'{}': unsupported scheme '{}' (tcp://, http://, nats:// or inproc://)", url, scheme));
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
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
