// The clients of `shardkit bench net` (net_clients.h).
#include "net_clients.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <strings.h>

namespace shardkit::bench {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Shared by the connections of one run: counting starts after the warm-up and stops at the end.
struct RunState {
  std::atomic<bool> counting{false};
  std::atomic<bool> stopping{false};
};

void AppendLoadRequest(uint64_t seq, int key, std::string& out) {
  fmt::format_to(std::back_inserter(out),
                 R"({{"store":"load","kind":"entry","id":"{}","meta$":{{"id":"{}"}}}})", key, seq);
}

// --- TCP
// ------------------------------------------------------------------------------------------

using TlsSocket = asio::ssl::stream<tcp::socket>;

// Frames over a plain socket (Stream = tcp::socket) or inside TLS (TlsSocket).
template <typename Stream>
class TcpDriver : public std::enable_shared_from_this<TcpDriver<Stream>> {
  using std::enable_shared_from_this<TcpDriver<Stream>>::shared_from_this;
  static constexpr bool kTls = std::is_same_v<Stream, TlsSocket>;

 public:
  TcpDriver(asio::io_context& io, int depth, RunState& state, int seed, asio::ssl::context* tls)
      : socket_(MakeStream(io, tls)),
        depth_(depth),
        state_(state),
        key_(seed),
        sent_at_(static_cast<size_t>(depth) * 2) {}

  void Start(const tcp::endpoint& where) {
    auto& lowest = socket_.lowest_layer();
    lowest.connect(where);
    lowest.set_option(tcp::no_delay(true));
    if constexpr (kTls) socket_.handshake(asio::ssl::stream_base::client);
    SendBatch();
    Read();
  }

  uint64_t completed = 0;
  std::vector<uint32_t> latencies_us;

 private:
  static Stream MakeStream(asio::io_context& io, asio::ssl::context* tls) {
    if constexpr (kTls) {
      Stream stream(io, *tls);
      SSL_clear_mode(stream.native_handle(), SSL_MODE_RELEASE_BUFFERS);  // as shardkit's client
      return stream;
    } else {
      return Stream(io);
    }
  }

  // As redis-benchmark -P: `depth` requests in one write, the next batch once all their replies
  // are in.
  void SendBatch() {
    auto now = Clock::now();
    for (int i = 0; i < depth_; ++i) Enqueue(now);
    awaited_ = depth_;
    Flush();
  }

  void Enqueue(Clock::time_point now) {
    uint64_t seq = next_seq_++;
    size_t start = out_.size();
    out_.append(4, '\0');
    AppendLoadRequest(seq, key_++ % kKeys, out_);
    auto n = static_cast<uint32_t>(out_.size() - start - 4);
    out_[start] = static_cast<char>(n >> 24);
    out_[start + 1] = static_cast<char>(n >> 16);
    out_[start + 2] = static_cast<char>(n >> 8);
    out_[start + 3] = static_cast<char>(n);
    sent_at_[seq % sent_at_.size()] = now;
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
                                if (self->awaited_ == 0) self->SendBatch();
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
      if (awaited_ == 0) throw std::runtime_error("bench net: a reply to no request");
      --awaited_;
      pos += 4 + length;
    }
    std::memmove(in_.data(), in_.data() + pos, used_ - pos);
    used_ -= pos;
  }

  Stream socket_;
  int depth_;
  RunState& state_;
  int key_;
  uint64_t next_seq_ = 1;
  int awaited_ = 0;  // replies of the batch in flight not yet read
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
      : socket_(io), state_(state), key_(seed) {}

  void Start(const tcp::endpoint& where, const std::string& host) {
    socket_.connect(where);
    socket_.set_option(tcp::no_delay(true));
    host_ = host;
    Send();
  }

  uint64_t completed = 0;
  std::vector<uint32_t> latencies_us;

 private:
  // The request goes out as one buffer, as the TCP client's frames do: the bytes Beast's
  // serializer writes for POST /act with Host, Content-Type and Content-Length (which hands the
  // socket a buffer per field).
  void Send() {
    body_.clear();
    AppendLoadRequest(++seq_, key_++ % kKeys, body_);
    request_.clear();
    fmt::format_to(std::back_inserter(request_),
                   "POST /act HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n"
                   "Content-Length: {}\r\n\r\n{}",
                   host_, body_.size(), body_);
    sent_at_ = Clock::now();
    asio::async_write(socket_, asio::buffer(request_),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        if (!ec) self->Read();
                      });
  }

  // Reads until the response to the request sent is whole, then sends the next.
  void Read() {
    if (in_.size() - used_ < 4 * 1024) in_.resize(in_.size() * 2);
    socket_.async_read_some(
        asio::buffer(in_.data() + used_, in_.size() - used_),
        [self = shared_from_this()](boost::system::error_code ec, size_t n) {
          if (ec) return;
          self->used_ += n;
          if (!self->TakeResponse()) return self->Read();
          if (self->state_.counting.load(std::memory_order_relaxed)) {
            ++self->completed;
            self->latencies_us.push_back(static_cast<uint32_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - self->sent_at_)
                    .count()));
          }
          if (!self->state_.stopping.load(std::memory_order_relaxed)) self->Send();
        });
  }

  // As a lean load generator (wrk, redis-benchmark) reads a reply: the status line, the header
  // lines up to the blank line, Content-Length's body; false while the response is not all in.
  // Throws on anything but a 200 whose body carries the entity.
  bool TakeResponse() {
    std::string_view in(in_.data(), used_);
    const size_t head_end = in.find("\r\n\r\n");
    if (head_end == std::string_view::npos) return false;
    const std::string_view head = in.substr(0, head_end + 2);
    const size_t length = ContentLength(head);
    const size_t total = head_end + 4 + length;
    if (used_ < total) return false;
    const std::string_view body = in.substr(head_end + 4, length);
    if (!head.starts_with("HTTP/1.1 200 ") || body.find("\"ent\"") == std::string_view::npos)
      throw std::runtime_error(fmt::format("bench net: HTTP response {}", in.substr(0, total)));
    std::memmove(in_.data(), in_.data() + total, used_ - total);
    used_ -= total;
    return true;
  }

  // The Content-Length of a response head (lines ending in CRLF); throws when it has none.
  static size_t ContentLength(std::string_view head) {
    constexpr std::string_view kName = "content-length:";
    for (size_t at = head.find("\r\n"); at != std::string_view::npos && at + 2 < head.size();
         at = head.find("\r\n", at + 2)) {
      const std::string_view line = head.substr(at + 2);
      if (line.size() > kName.size() && strncasecmp(line.data(), kName.data(), kName.size()) == 0)
        return std::strtoull(line.data() + kName.size(), nullptr, 10);
    }
    throw std::runtime_error(
        fmt::format("bench net: an HTTP response without Content-Length: {}", head));
  }

  tcp::socket socket_;
  RunState& state_;
  int key_;
  uint64_t seq_ = 0;
  Clock::time_point sent_at_;
  std::string host_, body_, request_;
  std::vector<char> in_ = std::vector<char>(8 * 1024);
  size_t used_ = 0;
};

// The client's threads: an io_context each, with the connections dealt out among them, so a
// connection's handlers all run on one thread.
struct ClientThreads {
  explicit ClientThreads(int count) {
    for (int i = 0; i < std::max(count, 1); ++i)
      ios.push_back(std::make_unique<asio::io_context>(1));
  }
  asio::io_context& For(int connection) { return *ios[connection % ios.size()]; }
  std::vector<std::unique_ptr<asio::io_context>> ios;
};

// Runs `drivers` (already connected) for warm-up + seconds on `threads`, returns figures.
template <typename Driver>
RunResult Drive(ClientThreads& threads, std::vector<std::shared_ptr<Driver>>& drivers,
                RunState& state, double seconds) {
  const auto warmup = std::chrono::milliseconds(300);
  const auto measure = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  asio::io_context& first = *threads.ios.front();
  asio::steady_timer timer(first);
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
      for (auto& io : threads.ios) io->stop();
    });
  });
  std::vector<std::thread> others;
  for (size_t i = 1; i < threads.ios.size(); ++i)
    others.emplace_back([io = threads.ios[i].get()] { io->run(); });
  first.run();
  for (std::thread& other : others) other.join();
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
  result.completed = completed;
  result.elapsed_s = elapsed;
  result.latencies_us = std::move(latencies);
  return result;
}

template <typename Stream>
RunResult RunTcpOver(const tcp::endpoint& where, const NetOptions& options, int depth,
                     asio::ssl::context* tls) {
  ClientThreads threads(options.client_threads);
  RunState state;
  std::vector<std::shared_ptr<TcpDriver<Stream>>> drivers;
  for (int i = 0; i < options.connections; ++i) {
    drivers.push_back(
        std::make_shared<TcpDriver<Stream>>(threads.For(i), depth, state, i * 37, tls));
    drivers.back()->Start(where);
  }
  return Drive(threads, drivers, state, options.seconds);
}

}  // namespace

RunResult RunTcp(const tcp::endpoint& where, const NetOptions& options, int depth,
                 asio::ssl::context* tls) {
  if (tls != nullptr) return RunTcpOver<TlsSocket>(where, options, depth, tls);
  return RunTcpOver<tcp::socket>(where, options, depth, nullptr);
}

RunResult RunHttp(const tcp::endpoint& where, const NetOptions& options) {
  ClientThreads threads(options.client_threads);
  RunState state;
  std::vector<std::shared_ptr<HttpDriver>> drivers;
  std::string host = fmt::format("127.0.0.1:{}", where.port());
  for (int i = 0; i < options.connections; ++i) {
    drivers.push_back(std::make_shared<HttpDriver>(threads.For(i), state, i * 37));
    drivers.back()->Start(where, host);
  }
  return Drive(threads, drivers, state, options.seconds);
}

}  // namespace shardkit::bench
