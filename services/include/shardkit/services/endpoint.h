// Endpoint: where a listener listens or a client connects, written as a URL.
//
//   tcp://127.0.0.1:7001     length-prefixed JSON frames (docs/services.md, "TCP frames")
//   http://127.0.0.1:8001    HTTP/1.1 keep-alive, POST /act
//   inproc://orders          an in-process node in the same process (tests, embedding)
//   nats://127.0.0.1:4222    a NATS server: a listener subscribes there, a client sends requests
//                            there (docs/cluster.md, "Subjects")
//
// Port 0 is allowed for listeners (the bound port is reported). Hosts are IP literals or names;
// nothing here resolves them.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shardkit/message/status.h"

namespace shardkit::services {

enum class Scheme { kTcp, kHttp, kInproc, kNats };

struct Endpoint {
  Scheme scheme = Scheme::kTcp;
  std::string host;  // empty for inproc
  uint16_t port = 0;
  std::string name;  // inproc only

  // The URL form ("tcp://127.0.0.1:7001").
  std::string ToString() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Parses a URL of the forms above; `invalid` naming the problem otherwise.
Result<Endpoint> ParseEndpoint(std::string_view url);

// Whether `text` looks like a URL (has "://"), as opposed to a local service name.
bool LooksLikeUrl(std::string_view text);

}  // namespace shardkit::services
