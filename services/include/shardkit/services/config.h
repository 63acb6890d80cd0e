// Node configuration: TOML loaded into typed, validated structs. Plain data — no expressions, no
// includes, no templating: what a file says is what the node runs.
//
//   [node]
//   name = "orders-1"
//   threads = 2                     # I/O threads
//   request_timeout_ms = 30000      # deadline given to requests that arrive without one
//   stop_grace_ms = 10000           # SIGTERM: how long in-flight requests may take to finish
//   max_reply_bytes = 16777216      # larger replies are answered with an error saying how to page
//
//   audit_log = ""                  # admin operations, one JSON line each ("": the log)
//
//   [[token]]                       # bearer tokens the listeners accept (docs/security.md)
//   name = "app"                    # named in the audit log and in refusals
//   secret = "…"
//   role = "client"                 # client: data patterns only; admin: operations too
//
//   [[listener]]
//   url = "tcp://127.0.0.1:7001"    # tcp://, http://, nats:// or inproc://name; port 0 = any free
//   external = false                # strip shard, cache and meta$ (but trace); operations only
//                                   # when `allow` lists them
//   tokens = ["app"]                # the [[token]] names accepted (default: every [[token]])
//   token = ""                      # a single unnamed secret (role: client when external, else
//                                   # admin); with neither, no token is asked for
//   allow = ["store:*"]             # patterns served at all (default: everything, but operations
//                                   # on an external listener)
//   insecure = false                # allow an external listener on a non-loopback address
//                                   # without a token or without TLS (logged)
//   tls_cert_file = "node.crt"      # tls:// and https:// only: certificate chain (PEM), required
//   tls_key_file = "node.key"       # its private key (PEM), required; both read again on reload
//   tls_client_ca_file = ""         # set: clients must present a certificate signed by it (mTLS)
//   max_message_bytes = 4194304
//   read_timeout_ms = 10000         # a request (or frame) must arrive within this once begun,
//                                   # and a new connection's first one within this of connecting
//   max_connections = 4096          # open connections; more are closed at accept
//   max_connections_per_peer = 1024 # per remote address (every loopback address is one peer)
//   idle_timeout_ms = 300000        # tcp: a connection with nothing in flight is closed after this
//   write_timeout_ms = 30000        # a reply the client does not read in this time drops it
//   max_in_flight_per_connection = 1024  # tcp: past this, the connection is not read until
//                                   # replies are written
//
//   [[service]]
//   name = "kv"                     # routes refer to it by this name
//   type = "kv"                     # a registered type (registry.h)
//   patterns = ["store:*"]          # optional: replaces the type's default patterns
//   max_in_flight = 1024            # past this, requests are answered `overloaded` at once
//   # ...type-specific keys, given to the factory as Settings
//
//   [[route]]
//   pattern = "store:*,kind:user"
//   to = "tcp://127.0.0.1:7002"     # a URL, or the name of a [[service]] of this node
//   timeout_ms = 5000               # remote only: how long to wait (capped by the deadline)
//   token = ""                      # remote only: bearer token of the remote listener
//   connections = 2                 # remote tcp/http only: pool size
//   tls_ca_file = ""                # remote tls/https only: CAs trusted for the server's
//                                   # certificate ("": the system's)
//   tls_cert_file = ""              # remote tls/https only: a client certificate and key, for a
//   tls_key_file = ""               # listener that asks for one (mTLS)
//
//   [cluster]                       # optional: without it the node runs alone (docs/cluster.md)
//   nats = "nats://127.0.0.1:4222"  # the NATS server (JetStream enabled) the nodes meet on
//   registry_bucket = "shardkit_registry"  # KV bucket: one key per running node, its patterns
//   maps_bucket = "shardkit_maps"   # KV bucket: one key per shard map (map.<name>)
//   ttl_ms = 6000                   # a node's key is dropped when not refreshed in this time
//   timeout_ms = 5000               # how long a request to another node may take (capped by the
//                                   # deadline)
//   resend_after_ms = 1000          # no reply in this time: sent again, doubling (0: never)
//   tls_ca_file = ""                # set: TLS to NATS, its certificate checked against these CAs
//   tls_cert_file = ""              # a client certificate and key, for a server that verifies
//   tls_key_file = ""               # clients (mTLS)
//   creds_file = ""                 # a .creds file (user JWT and NKey seed)
//   nkey = ""                       # or an NKey user: its public key ("U…")
//   nkey_seed_file = ""             # and the file of its seed
//
// Errors name the file, the key and the problem: "node.toml: listener[1].url: unsupported scheme
// 'udp' (tcp://, http:// or inproc://)". Unknown keys are errors (typos should not be ignored).
//
// Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shardkit/message/status.h"
#include "shardkit/services/endpoint.h"
#include "shardkit/services/settings.h"

namespace shardkit::services {

// Who a token lets in: `client` sends data messages (store:*, commands, queries); `admin` also
// operations (migrations, shard maps, reload, feeds, dead letters, sys:*).
enum class Role { kClient, kAdmin };

struct TokenConfig {
  std::string name;
  std::string secret;
  Role role = Role::kClient;
  friend bool operator==(const TokenConfig&, const TokenConfig&) = default;
};

// The default bound on one reply's encoded bytes ([node] max_reply_bytes).
inline constexpr size_t kDefaultMaxReplyBytes = 16 * 1024 * 1024;

struct ListenerConfig {
  Endpoint endpoint;
  bool external = false;
  std::string token;                // the unnamed token ("listener" in the audit log)
  std::vector<TokenConfig> tokens;  // the named tokens accepted
  std::vector<std::string> allow;   // patterns served; empty: all (external: data only)
  bool insecure = false;
  // An http:// listener serves the read-only web console at /console (docs/operations.md). TOML
  // `console`; when absent, on unless the listener is external.
  bool console = true;
  size_t max_message_bytes = 4 * 1024 * 1024;
  int64_t read_timeout_ms = 10'000;
  int64_t max_connections = 4096;
  int64_t max_connections_per_peer = 1024;
  int64_t idle_timeout_ms = 300'000;
  int64_t write_timeout_ms = 30'000;
  int64_t max_in_flight_per_connection = 1024;
  int64_t request_timeout_ms = 30'000;             // copied from [node]
  size_t max_reply_bytes = kDefaultMaxReplyBytes;  // copied from [node]
  // tls:// and https:// only (docs/security.md, "TLS"): the certificate chain and key (PEM), read
  // again on reload; with a client CA, a client must present a certificate it signed (mTLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

struct ServiceConfig {
  std::string name;
  std::string type;
  std::vector<std::string> patterns;  // empty: the type's defaults
  int64_t max_in_flight = 1024;
  Settings settings;  // the remaining keys
};

struct RouteConfig {
  std::string pattern;
  std::string to;  // service name or URL
  int64_t timeout_ms = 5'000;
  std::string token;
  int connections = 2;
  std::string tls_ca_file;  // tls:// and https:// only: as ClientOptions
  std::string tls_cert_file;
  std::string tls_key_file;
};

struct ClusterConfig {
  std::string nats;  // empty: no cluster
  std::string registry_bucket = "shardkit_registry";
  std::string maps_bucket = "shardkit_maps";
  int64_t ttl_ms = 6'000;
  int64_t timeout_ms = 5'000;
  int64_t resend_after_ms = 1'000;
  NatsAuthFiles files;  // TLS and credentials for the NATS links
  friend bool operator==(const ClusterConfig&, const ClusterConfig&) = default;
};

// The NATS endpoint of [cluster], with its TLS and credential files.
Result<Endpoint> ClusterEndpoint(const ClusterConfig& cluster);

struct NodeConfig {
  std::string source;  // the file it was read from ("" when built in code)
  std::string name = "node";
  int threads = 2;
  int64_t request_timeout_ms = 30'000;
  int64_t stop_grace_ms = 10'000;
  size_t max_reply_bytes = kDefaultMaxReplyBytes;
  std::string audit_log;  // empty: audit records go to the log
  std::vector<TokenConfig> tokens;
  std::vector<ListenerConfig> listeners;
  std::vector<ServiceConfig> services;
  std::vector<RouteConfig> routes;
  ClusterConfig cluster;
};

// Reads and validates `path`.
Result<NodeConfig> LoadNodeConfig(const std::string& path);
// Parses and validates TOML text; `source` names it in errors.
Result<NodeConfig> ParseNodeConfig(std::string_view toml_text, std::string source);

}  // namespace shardkit::services
