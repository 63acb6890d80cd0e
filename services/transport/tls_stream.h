// Internal: the SSL stream over a TCP socket, for the .cc files that do network I/O (tcp_server.cc,
// tcp_client.cc, http.cc, tls.cc); Asio's SSL headers are heavy, so no other file includes this.
// The transports are templates over their stream: `tcp::socket` (tcp://, http://) or `TlsStream`
// (tls://, https://); the overloads below are what differs between the two.
#pragma once

#include "io.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>

#include <string>

#include "tls.h"

namespace shardkit::services {

using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket>;

inline tcp::socket& SocketOf(tcp::socket& stream) { return stream; }
inline tcp::socket& SocketOf(TlsStream& stream) { return stream.next_layer(); }

// Keeps OpenSSL's record buffers for the connection's life. Asio asks OpenSSL to free them whenever
// they are empty (SSL_MODE_RELEASE_BUFFERS), which for small requests and replies means about
// 34 KiB allocated and freed again around every record; kept, they cost that much per connection.
void KeepRecordBuffers(SSL* ssl);

// Sets what the client checks in the server's certificate: the URL's host name (also sent as SNI)
// or IP address; keeps the record buffers.
void PrepareClientStream(SSL* ssl, const std::string& host);

// Why a client's handshake failed, in words: the certificate check's reason when there is one
// ("certificate has expired", "unable to get local issuer certificate").
std::string HandshakeError(SSL* ssl, const boost::system::error_code& ec);

// What the first byte waiting on `socket` says (peeked, not consumed): a TLS handshake, or a
// plain-text client on a TLS port, to be told so in its own protocol instead of a dropped
// connection. kNothingYet: a wake-up with no byte to read (the reactor can report readiness a
// descriptor number's earlier socket had): wait again. kClosed: the client left.
enum class FirstByte { kTls, kPlain, kNothingYet, kClosed };
FirstByte PeekFirstByte(const tcp::socket& socket);

}  // namespace shardkit::services
