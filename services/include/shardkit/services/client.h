// Clients for remote endpoints. A client *is* a Handler: a route "pattern -> tcp://host:port" is a
// route whose handler forwards the message and replies with the remote reply, so services never
// know where their peers run (transport independence).
//
// Every call has a timeout: min(options.timeout, the message's meta$.deadline - now). The
// forwarded message carries that deadline, so the remote node gives up when the caller does. A
// call that does not finish in time is answered `timeout`; an endpoint that cannot be reached or
// drops the connection answers `unavailable`; a message larger than max_message_bytes is refused
// `invalid` before it is sent. The reply carries the request's meta$.id (the trace is kept).
//
//   tcp://    a pool of `connections` connections, many requests in flight on each (replies are
//             matched by meta$.id); a lost connection fails its requests `unavailable` and the
//             next request reconnects.
//   http://   POST /act on keep-alive connections, one request at a time per connection, at most
//             `connections` connections; a request whose reused connection turns out closed by
//             the server (idle timeout, restart) is sent once more on a new connection.
//   tls://, https://  the same inside TLS: the server's certificate must chain to a trusted CA and
//             name the host (or IP) of the URL; a failed handshake answers `unavailable` with
//             OpenSSL's reason ("certificate has expired").
//   inproc:// the node listening on inproc://name in this process (unavailable when none).
//
// Thread-safety: Handle may be called from any thread; replies arrive on I/O threads of `runtime`.
// The runtime must outlive the client.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "shardkit/message/handler.h"
#include "shardkit/message/status.h"
#include "shardkit/services/endpoint.h"
#include "shardkit/services/runtime.h"

namespace shardkit::services {

struct ClientOptions {
  std::chrono::milliseconds timeout{5'000};
  int connections = 2;
  std::string token;                           // sent as the bearer token when set
  size_t max_message_bytes = 4 * 1024 * 1024;  // the largest request sent
  // The largest reply read (the larger of this and max_message_bytes): a node's default
  // [node] max_reply_bytes, so any reply it sends can be read.
  size_t max_reply_bytes = 16 * 1024 * 1024;
  size_t ReplyLimit() const { return std::max(max_message_bytes, max_reply_bytes) + 4096; }
  // tls:// and https:// only: the CAs (PEM) trusted for the server's certificate (empty: the
  // system's), and a client certificate chain and key (PEM) for a listener that asks for one.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
};

Result<std::shared_ptr<Handler>> MakeClient(IoRuntime& runtime, const Endpoint& endpoint,
                                            ClientOptions options = {});

// Sends one message and waits for the reply (for tools and tests; never on an I/O thread).
Result<Message> CallAndWait(Handler& client, Message message);

}  // namespace shardkit::services
