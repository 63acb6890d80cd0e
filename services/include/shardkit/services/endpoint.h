// Endpoint: where a listener listens or a client connects, written as a URL.
//
//   tcp://127.0.0.1:7001     length-prefixed JSON frames (docs/services.md, "TCP frames")
//   http://127.0.0.1:8001    HTTP/1.1 keep-alive, POST /act
//   tls://127.0.0.1:7001     tcp:// inside TLS (docs/security.md, "TLS")
//   https://127.0.0.1:8001   http:// inside TLS
//   inproc://orders          an in-process node in the same process (tests, embedding)
//   nats://127.0.0.1:4222    a NATS server: a listener subscribes there, a client sends requests
//                            there (docs/cluster.md, "Subjects")
//   nats://user:pw@host:4222 the same with credentials (a user and password, or one token:
//   nats://token@host:4222   `nats://s3cret@host:4222`), given to the NATS server at connect
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

// nats only: how a link proves itself to the NATS server and checks it (docs/cluster.md, "TLS and
// credentials"). Files, never part of the URL; set from [cluster].
struct NatsAuthFiles {
  std::string tls_ca_file;    // set: TLS, the server's certificate checked against these CAs
  std::string tls_cert_file;  // with tls_key_file: a client certificate (the server's verify)
  std::string tls_key_file;
  std::string creds_file;      // a .creds file: the user's JWT and NKey seed
  std::string nkey;            // an NKey user's public key ("U…"), with nkey_seed_file
  std::string nkey_seed_file;  // the file holding that user's seed ("SU…")
  bool tls() const { return !tls_ca_file.empty() || !tls_cert_file.empty(); }
  friend bool operator==(const NatsAuthFiles&, const NatsAuthFiles&) = default;
};

struct Endpoint {
  Scheme scheme = Scheme::kTcp;
  std::string host;  // empty for inproc
  uint16_t port = 0;
  std::string name;          // inproc only
  std::string credentials;   // nats only: "user:password" or a token; empty for none
  bool tls = false;          // tcp and http only: tls:// and https://
  NatsAuthFiles nats_files;  // nats only

  // The URL form ("tcp://127.0.0.1:7001"), with any password or token written `***`: safe for
  // logs, errors and sys:config.
  std::string ToString() const;
  // The URL with its credentials: only for connecting.
  std::string ToSecretString() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Parses a URL of the forms above; `invalid` naming the problem otherwise.
Result<Endpoint> ParseEndpoint(std::string_view url);

// `text` as it may be shown: a URL with its credentials written `***` (Endpoint::ToString), any
// other text (a service name) as it is.
std::string Shown(std::string_view text);

// Whether `text` looks like a URL (has "://"), as opposed to a local service name.
bool LooksLikeUrl(std::string_view text);

}  // namespace shardkit::services
