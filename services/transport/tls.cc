#include "tls.h"

#include "tls_stream.h"

#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace shardkit::services {
namespace {

namespace ssl = asio::ssl;

constexpr auto kOptions = ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1 | ssl::context::single_dh_use;

// AES-128-GCM first: as safe for these links and cheaper per record than the default AES-256.
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

std::shared_ptr<SslContext> NewContext(ssl::context::method method) {
  auto context = std::make_shared<SslContext>(method);
  context->set_options(kOptions);
  SSL_CTX_set_ciphersuites(context->native_handle(), kTls13Suites);
  return context;
}

Status FileError(std::string_view what, const std::string& path,
                 const boost::system::error_code& ec) {
  return Status::Invalid(fmt::format("{} '{}': {}", what, path, ec.message()));
}

Result<std::shared_ptr<SslContext>> MakeServerContext(const ListenerConfig& config) {
  auto context = NewContext(ssl::context::tls_server);
  // The listener's order decides, so clients that list AES-256 first (OpenSSL's default) get
  // AES-128-GCM too.
  SSL_CTX_set_options(context->native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE);
  boost::system::error_code ec;
  if (context->use_certificate_chain_file(config.tls_cert_file, ec); ec)
    return FileError("tls_cert_file", config.tls_cert_file, ec);
  if (context->use_private_key_file(config.tls_key_file, ssl::context::pem, ec); ec)
    return FileError("tls_key_file", config.tls_key_file, ec);
  if (SSL_CTX_check_private_key(context->native_handle()) != 1)
    return Status::Invalid(fmt::format("tls_key_file '{}' is not the key of tls_cert_file '{}'",
                                       config.tls_key_file, config.tls_cert_file));
  if (!config.tls_client_ca_file.empty()) {
    if (context->load_verify_file(config.tls_client_ca_file, ec); ec)
      return FileError("tls_client_ca_file", config.tls_client_ca_file, ec);
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return context;
}

}  // namespace

Result<std::shared_ptr<SslContext>> MakeClientTlsContext(const ClientOptions& options) {
  auto context = NewContext(ssl::context::tls_client);
  boost::system::error_code ec;
  if (options.tls_ca_file.empty()) {
    context->set_default_verify_paths(ec);
  } else if (context->load_verify_file(options.tls_ca_file, ec); ec) {
    return FileError("tls_ca_file", options.tls_ca_file, ec);
  }
  context->set_verify_mode(ssl::verify_peer);
  if (options.tls_cert_file.empty() != options.tls_key_file.empty())
    return Status::Invalid("tls_cert_file and tls_key_file go together: give both or neither");
  if (!options.tls_cert_file.empty()) {
    if (context->use_certificate_chain_file(options.tls_cert_file, ec); ec)
      return FileError("tls_cert_file", options.tls_cert_file, ec);
    if (context->use_private_key_file(options.tls_key_file, ssl::context::pem, ec); ec)
      return FileError("tls_key_file", options.tls_key_file, ec);
  }
  return context;
}

Result<std::shared_ptr<ServerTls>> ServerTls::Load(const ListenerConfig& config) {
  std::shared_ptr<ServerTls> tls(new ServerTls(config));
  Status loaded = tls->Reload();
  if (!loaded.ok()) return loaded;
  return tls;
}

Status ServerTls::Reload() {
  auto context = MakeServerContext(config_);
  if (!context.ok()) {
    return Status::Invalid(
        fmt::format("{}: {}", config_.endpoint.ToString(), context.status().message()));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = std::move(context).value();
  return Status::Ok();
}

std::shared_ptr<SslContext> ServerTls::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

void KeepRecordBuffers(SSL* ssl) { SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS); }

void PrepareClientStream(SSL* ssl, const std::string& host) {
  KeepRecordBuffers(ssl);
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (ec) {
    SSL_set_tlsext_host_name(ssl, host.c_str());  // SNI: names only
    SSL_set1_host(ssl, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  }
}

std::string HandshakeError(SSL* ssl, const boost::system::error_code& ec) {
  long verified = SSL_get_verify_result(ssl);
  if (verified != X509_V_OK)
    return fmt::format("the server's certificate was refused: {}",
                       X509_verify_cert_error_string(verified));
  return ec.message();
}

FirstByte PeekFirstByte(const tcp::socket& socket) {
  unsigned char first = 0;
  ssize_t n =
      ::recv(const_cast<tcp::socket&>(socket).native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 1) return first == 0x16 ? FirstByte::kTls : FirstByte::kPlain;  // 0x16: a handshake
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return FirstByte::kNothingYet;
  return FirstByte::kClosed;
}

}  // namespace shardkit::services
