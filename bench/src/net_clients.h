// The clients of `shardkit bench net` (net_bench.cc): `connections` connections dealt out among
// `client_threads` threads, each thread an io_context of its own, run for a 300 ms warm-up and
// then `seconds` counted.
// - TCP: frames, as redis-benchmark -P: `depth` requests in one write, the next batch once all
//   their replies are in; over TLS when given the client's context.
// - HTTP/1.1 keep-alive: POST /act, one request at a time per connection; the response read as a
//   lean load generator (wrk, redis-benchmark) reads one: status line, headers, Content-Length's
//   body.
// Every reply is checked to carry the entity; anything else stops the bench with the reply.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "net_run.h"
#include "shardkit/bench/bench.h"

namespace boost::asio::ssl {
class context;
}

namespace shardkit::bench {

RunResult RunTcp(const boost::asio::ip::tcp::endpoint& where, const NetOptions& options, int depth,
                 boost::asio::ssl::context* tls = nullptr);
RunResult RunHttp(const boost::asio::ip::tcp::endpoint& where, const NetOptions& options);

}  // namespace shardkit::bench
