// Internal: TLS contexts for tls:// and https:// (docs/security.md, "TLS"). This header names the
// OpenSSL context only by declaration; the SSL streams themselves live in tls_stream.h, included
// by the few .cc files that do network I/O.
//
// Thread-safety: ServerTls is safe from any thread; a context, once made, is only read.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "shardkit/message/status.h"
#include "shardkit/services/client.h"
#include "shardkit/services/config.h"

namespace boost::asio::ssl {
class context;
}

namespace shardkit::services {

using SslContext = boost::asio::ssl::context;

// A client's context: the CAs trusted (ca_file, else the system's), the client certificate if
// any; TLS 1.2 at least. `invalid` naming the file and OpenSSL's reason.
Result<std::shared_ptr<SslContext>> MakeClientTlsContext(const ClientOptions& options);

// A listener's context, made from its files at start and again on Reload: connections accepted
// afterwards use the new certificate, open ones keep theirs.
class ServerTls {
 public:
  static Result<std::shared_ptr<ServerTls>> Load(const ListenerConfig& config);
  Status Reload();
  std::shared_ptr<SslContext> current() const;

 private:
  explicit ServerTls(ListenerConfig config) : config_(std::move(config)) {}
  const ListenerConfig config_;
  mutable std::mutex mutex_;
  std::shared_ptr<SslContext> current_;  // guarded by mutex_
};

}  // namespace shardkit::services
