// Internal: the streams of the HTTP transport (http.cc, http_client.cc), which are templates over
// one of them: http:// over a plain Beast TCP stream, https:// inside TLS (tls_stream.h).
#pragma once

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "tls_stream.h"

namespace shardkit::services {

using PlainHttp = boost::beast::tcp_stream;
using TlsHttp = boost::beast::ssl_stream<boost::beast::tcp_stream>;

}  // namespace shardkit::services
