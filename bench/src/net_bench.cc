// `shardkit bench net`: a node in this process serving store:load from the in-memory kv service
// (100-byte values), driven over loopback by `connections` clients: TCP at depth 1 and at
// options.depth requests in flight per connection, then HTTP/1.1 keep-alive (one request at a time
// per connection). The node runs with its default two I/O threads and the clients on one more, all
// on the same machine, so the figures are what the whole loop (client + node) achieves.
//
// idle_rss_mb is this process's resident memory after the node has started and before any
// traffic: the node plus the benchmark's own code and libraries (an upper bound for a node alone).
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "shardkit/bench/bench.h"
#include "shardkit/services/config.h"
#include "shardkit/services/node.h"

namespace shardkit::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr int kKeys = 1000;

double RssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// What one run measured.
struct RunResult {
  double per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

// Shared by the connections of one run: counting starts after the warm-up and stops at the end.
struct RunState {
  std::atomic<bool> counting{false};
  std::atomic<bool> stopping{false};
};

std::string LoadRequest(uint64_t seq, int key) {
  return fmt::format(R"({{"store":"load","kind":"entry","id":"{}","meta$":{{"id":"{}"}}}})", key,
                     seq);
}

// --- TCP
// ------------------------------------------------------------------------------------------

class TcpDriver : public std::enable_shared_from_this<TcpDriver> {
 public:
  TcpDriver(asio::io_context& io, int depth, RunState& state, int seed)
      : socket_(io),
        depth_(depth),
        state_(state),
        key_(seed),
        sent_at_(static_cast<size_t>(depth) * 2) {}

  void Start(const tcp::endpoint& where) {
    socket_.connect(where);
    socket_.set_option(tcp::no_delay(true));
    for (int i = 0; i < depth_; ++i) Enqueue();
    Flush();
    Read();
  }

  uint64_t completed = 0;
  std::vector<uint32_t> latencies_us;

 private:
  void Enqueue() {
    uint64_t seq = next_seq_++;
    std::string json = LoadRequest(seq, key_++ % kKeys);
    uint32_t n = static_cast<uint32_t>(json.size());
    char header[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                      static_cast<char>(n >> 8), static_cast<char>(n)};
    out_.append(header, 4);
    out_ += json;
    sent_at_[seq % sent_at_.size()] = Clock::now();
  }

  void Flush() {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    writing_buffer_.swap(out_);
    out_.clear();
    asio::async_write(socket_, asio::buffer(writing_buffer_),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        self->writing_ = false;
                        self->writing_buffer_.clear();
                        if (!ec) self->Flush();
                      });
  }

  void Read() {
    if (in_.size() - used_ < 16 * 1024) in_.resize(in_.size() * 2);
    socket_.async_read_some(asio::buffer(in_.data() + used_, in_.size() - used_),
                            [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                              if (ec) return;
                              self->used_ += n;
                              self->Process();
                              if (!self->state_.stopping.load(std::memory_order_relaxed)) {
                                self->Flush();
                                self->Read();
                              }
                            });
  }

  void Process() {
    size_t pos = 0;
    auto now = Clock::now();
    bool counting = state_.counting.load(std::memory_order_relaxed);
    while (used_ - pos >= 4) {
      auto b = reinterpret_cast<const unsigned char*>(in_.data() + pos);
      size_t length = (size_t{b[0]} << 24) | (size_t{b[1]} << 16) | (size_t{b[2]} << 8) | b[3];
      if (used_ - pos - 4 < length) break;
      std::string_view reply(in_.data() + pos + 4, length);
      // The reply ends with "meta$":{"id":"<seq>"}}; an error reply would lack "ent".
      size_t at = reply.rfind("\"id\":\"");
      if (at == std::string_view::npos || reply.find("\"ent\"") == std::string_view::npos) {
        throw std::runtime_error(fmt::format("bench net: unexpected reply {}", reply));
      }
      uint64_t seq = std::strtoull(reply.data() + at + 6, nullptr, 10);
      if (counting) {
        ++completed;
        latencies_us.push_back(
            static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                      now - sent_at_[seq % sent_at_.size()])
                                      .count()));
      }
      Enqueue();
      pos += 4 + length;
    }
    std::memmove(in_.data(), in_.data() + pos, used_ - pos);
    used_ -= pos;
  }

  tcp::socket socket_;
  int depth_;
  RunState& state_;
  int key_;
  uint64_t next_seq_ = 1;
  std::vector<Clock::time_point> sent_at_;
  std::string out_, writing_buffer_;
  bool writing_ = false;
  std::vector<char> in_ = std::vector<char>(64 * 1024);
  size_t used_ = 0;
};

// --- HTTP
// -----------------------------------------------------------------------------------------

class HttpDriver : public std::enable_shared_from_this<HttpDriver> {
 public:
  HttpDriver(asio::io_context& io, RunState& state, int seed)
      : stream_(io), state_(state), key_(seed) {}

  void Start(const tcp::endpoint& where, const std::string& host) {
    stream_.connect(where);
    stream_.socket().set_option(tcp::no_delay(true));
    request_.method(http::verb::post);
    request_.target("/act");
    request_.version(11);
    request_.set(http::field::host, host);
    request_.set(http::field::content_type, "application/json");
    request_.keep_alive(true);
    Send();
  }

  uint64_t completed = 0;
  std::vector<uint32_t> latencies_us;

 private:
  void Send() {
    request_.body() = LoadRequest(++seq_, key_++ % kKeys);
    request_.prepare_payload();
    sent_at_ = Clock::now();
    http::async_write(
        stream_, request_, [self = shared_from_this()](boost::system::error_code ec, size_t) {
          if (ec) return;
          self->response_ = {};
          http::async_read(self->stream_, self->buffer_, self->response_,
                           [self](boost::system::error_code ec, size_t) {
                             if (ec) return;
                             if (self->response_.result() != http::status::ok) {
                               throw std::runtime_error(fmt::format("bench net: HTTP {}: {}",
                                                                    self->response_.result_int(),
                                                                    self->response_.body()));
                             }
                             if (self->state_.counting.load(std::memory_order_relaxed)) {
                               ++self->completed;
                               self->latencies_us.push_back(static_cast<uint32_t>(
                                   std::chrono::duration_cast<std::chrono::microseconds>(
                                       Clock::now() - self->sent_at_)
                                       .count()));
                             }
                             if (!self->state_.stopping.load(std::memory_order_relaxed))
                               self->Send();
                           });
        });
  }

  beast::tcp_stream stream_;
  RunState& state_;
  int key_;
  uint64_t seq_ = 0;
  Clock::time_point sent_at_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  beast::flat_buffer buffer_;
};

double Percentile(std::vector<uint32_t>& samples, double q) {
  if (samples.empty()) return 0;
  size_t k =
      std::min(samples.size() - 1, static_cast<size_t>(q * static_cast<double>(samples.size())));
  std::nth_element(samples.begin(), samples.begin() + static_cast<long>(k), samples.end());
  return samples[k] / 1000.0;
}

// Runs `drivers` (already connected) for warm-up + seconds on `io` (one thread), returns figures.
template <typename Driver>
RunResult Drive(asio::io_context& io, std::vector<std::shared_ptr<Driver>>& drivers,
                RunState& state, double seconds) {
  const auto warmup = std::chrono::milliseconds(300);
  const auto measure = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  asio::steady_timer timer(io);
  Clock::time_point started, ended;
  timer.expires_after(warmup);
  timer.async_wait([&](boost::system::error_code) {
    state.counting = true;
    started = Clock::now();
    timer.expires_after(measure);
    timer.async_wait([&](boost::system::error_code) {
      state.counting = false;
      state.stopping = true;
      ended = Clock::now();
      io.stop();
    });
  });
  io.run();
  RunResult result;
  uint64_t completed = 0;
  std::vector<uint32_t> latencies;
  for (auto& driver : drivers) {
    completed += driver->completed;
    latencies.insert(latencies.end(), driver->latencies_us.begin(), driver->latencies_us.end());
  }
  double elapsed = std::chrono::duration<double>(ended - started).count();
  result.per_s = elapsed > 0 ? static_cast<double>(completed) / elapsed : 0;
  result.p50_ms = Percentile(latencies, 0.50);
  result.p99_ms = Percentile(latencies, 0.99);
  return result;
}

RunResult RunTcp(const tcp::endpoint& where, const NetOptions& options, int depth) {
  asio::io_context io(1);
  RunState state;
  std::vector<std::shared_ptr<TcpDriver>> drivers;
  for (int i = 0; i < options.connections; ++i) {
    drivers.push_back(std::make_shared<TcpDriver>(io, depth, state, i * 37));
    drivers.back()->Start(where);
  }
  return Drive(io, drivers, state, options.seconds);
}

RunResult RunHttp(const tcp::endpoint& where, const NetOptions& options) {
  asio::io_context io(1);
  RunState state;
  std::vector<std::shared_ptr<HttpDriver>> drivers;
  std::string host = fmt::format("127.0.0.1:{}", where.port());
  for (int i = 0; i < options.connections; ++i) {
    drivers.push_back(std::make_shared<HttpDriver>(io, state, i * 37));
    drivers.back()->Start(where, host);
  }
  return Drive(io, drivers, state, options.seconds);
}

tcp::endpoint EndpointOf(const std::string& url) {
  auto port = static_cast<unsigned short>(std::stoi(url.substr(url.rfind(':') + 1)));
  return tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
}

}  // namespace

Figures RunNetBench(const NetOptions& options) {
  // The node's start-up log would go to stdout, where --json promises one object.
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);
  auto config = services::ParseNodeConfig(fmt::format(R"(
[node]
name = "bench"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:0"
[[listener]]
url = "http://127.0.0.1:0"
[[service]]
name = "store"
type = "kv"
patterns = ["store:load"]
max_in_flight = 1000000
preload = {}
value_bytes = 100
)",
                                                      kKeys),
                                          "bench-net.toml");
  if (!config.ok()) throw std::runtime_error(config.status().ToString());
  auto node = services::Node::Start(std::move(config).value());
  if (!node.ok()) throw std::runtime_error(node.status().ToString());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  double idle_rss_mb = RssMb();
  auto urls = (*node)->listener_urls();
  tcp::endpoint tcp_where = EndpointOf(urls.at(0));
  tcp::endpoint http_where = EndpointOf(urls.at(1));

  RunResult depth1 = RunTcp(tcp_where, options, 1);
  RunResult deep = RunTcp(tcp_where, options, options.depth);
  RunResult over_http = RunHttp(http_where, options);
  (*node)->Stop(std::chrono::milliseconds(1000));
  spdlog::set_level(level);

  return Figures{
      {"tcp_depth1_per_s", depth1.per_s},   {"tcp_depth16_per_s", deep.per_s},
      {"http_per_s", over_http.per_s},      {"tcp_depth1_p50_ms", depth1.p50_ms},
      {"tcp_depth1_p99_ms", depth1.p99_ms}, {"tcp_depth16_p99_ms", deep.p99_ms},
      {"idle_rss_mb", idle_rss_mb},
  };
}

}  // namespace shardkit::bench
