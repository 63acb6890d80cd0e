// `shardkit bench net`: a node in this process serving store:load from the in-memory kv service
// (100-byte values), driven over loopback by `connections` clients: TCP at depth 1 and in batches
// of options.depth requests per connection (as redis-benchmark -P), and HTTP/1.1 keep-alive (one
// request at a time per connection). The same TCP work over TLS (tls://, certificates made at
// start) and the HTTP run take turns with the plain runs in slices (RunInTurns), so a slow spell of
// a shared machine weighs on all alike. The node runs with its default two I/O threads and the
// clients on `client_threads` more (2: one thread's TLS work capped the TLS runs), all on the
// same machine, so the figures are what the whole loop (client + node) achieves. The baseline, in
// the same turns: redis-server's GET on the same number of keys and value size, timed by
// redis-benchmark with the same connections and depth (redis_baseline.h).
//
// idle_rss_mb is this process's resident memory after the node has started and before any
// traffic: the node plus the benchmark's own code and libraries (an upper bound for a node alone).
// idle_cpu_percent is measured first, on its own node with background workers (idle_node.h);
// with --transport nats, idle_cpu_percent_nats the same with a NATS listener and a cluster.
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "idle_node.h"
#include "net_nats.h"
#include "net_run.h"
#include "redis_baseline.h"
#include "shardkit/bench/bench.h"
#include "shardkit/message/codec.h"
#include "shardkit/services/config.h"
#include "shardkit/services/node.h"
#include "shardkit/testing/test_certs.h"

namespace shardkit::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

double RssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

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
      : stream_(io), state_(state), key_(seed) {}

  void Start(const tcp::endpoint& where, const std::string& host) {
    stream_.connect(where);
    stream_.socket().set_option(tcp::no_delay(true));
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
    asio::async_write(stream_, asio::buffer(request_),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        if (ec) return;
                        self->response_ = {};
                        http::async_read(
                            self->stream_, self->buffer_, self->response_,
                            [self](boost::system::error_code ec, size_t) {
                              if (ec) return;
                              if (self->response_.result() != http::status::ok ||
                                  self->response_.body().find("\"ent\"") == std::string::npos) {
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
  std::string host_, body_, request_;
  http::response<http::string_body> response_;
  beast::flat_buffer buffer_;
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

// Slices of one run measured at different times, as one run.
RunResult Merge(std::vector<RunResult>& slices) {
  RunResult merged;
  for (RunResult& slice : slices) {
    merged.completed += slice.completed;
    merged.elapsed_s += slice.elapsed_s;
    merged.latencies_us.insert(merged.latencies_us.end(), slice.latencies_us.begin(),
                               slice.latencies_us.end());
  }
  merged.per_s =
      merged.elapsed_s > 0 ? static_cast<double>(merged.completed) / merged.elapsed_s : 0;
  merged.p50_ms = Percentile(merged.latencies_us, 0.50);
  merged.p99_ms = Percentile(merged.latencies_us, 0.99);
  return merged;
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

// Over TLS when `tls` (the client's context) is given.
RunResult RunTcp(const tcp::endpoint& where, const NetOptions& options, int depth,
                 asio::ssl::context* tls = nullptr) {
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

// The test certificates (CA and a server certificate for 127.0.0.1) in a temp dir, removed after.
struct CertDir {
  CertDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "shardkit-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("bench net: mkdtemp failed");
    path = pattern;
    files = testing::MakeTestCerts(path);
  }
  ~CertDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string path;
  testing::TestCerts files;
};

tcp::endpoint EndpointOf(const std::string& url) {
  auto port = static_cast<unsigned short>(std::stoi(url.substr(url.rfind(':') + 1)));
  return tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
}

// The node measured: a kv store of 100-byte values behind TCP, HTTP and TLS listeners (and
// NATS with `nats_listener`).
std::unique_ptr<services::Node> StartBenchNode(const CertDir& certs,
                                               const std::string& nats_listener) {
  auto config =
      services::ParseNodeConfig(fmt::format(R"(
[node]
name = "bench"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:0"
[[listener]]
url = "http://127.0.0.1:0"
[[listener]]
url = "tls://127.0.0.1:0"
tls_cert_file = "{}"
tls_key_file = "{}"
{}
[[service]]
name = "store"
type = "kv"
patterns = ["store:load"]
max_in_flight = 1000000
preload = {}
value_bytes = {}
)",
                                            certs.files.server_cert, certs.files.server_key,
                                            nats_listener, kKeys, kValueBytes),
                                "bench-net.toml");
  if (!config.ok()) throw std::runtime_error(config.status().ToString());
  auto node = services::Node::Start(std::move(config).value());
  if (!node.ok()) throw std::runtime_error(node.status().ToString());
  return std::move(node).value();
}

struct Runs {
  RunResult depth1, deep, tls1, tls_deep, over_nats, over_http;
  double tls1_median_ratio = 0, tls_deep_median_ratio = 0, http_median_ratio = 0;
  // redis-benchmark's GETs per second (the mean of its slices) and the median of the slices'
  // tcp / redis ratios; NaN (null) without redis.
  double redis1 = NAN, redis_deep = NAN, redis1_median_ratio = NAN, redis_deep_median_ratio = NAN;
};

// The median of the ratios over[i] / plain[i], slice by slice: the two slices of a pair run within
// about a second of each other, so a slow spell of the machine moves one pair, not the median.
double MedianRatio(const std::vector<RunResult>& over, const std::vector<RunResult>& plain) {
  std::vector<double> ratios;
  for (size_t i = 0; i < over.size() && i < plain.size(); ++i) {
    if (plain[i].per_s > 0) ratios.push_back(over[i].per_s / plain[i].per_s);
  }
  if (ratios.empty()) return 0;
  std::sort(ratios.begin(), ratios.end());
  size_t n = ratios.size();
  return n % 2 == 1 ? ratios[n / 2] : (ratios[n / 2 - 1] + ratios[n / 2]) / 2;
}

// Runs that are compared (http, tls, redis and nats against plain tcp) take turns in kRounds
// short slices each, the order alternating (tcp, http, tls, redis, then redis, tls, http, tcp;
// http at depth 1 only): on a shared, noisy machine a slow spell weighs on all, and no side
// always runs just after another's connections close. `redis` null: no redis runs; `nats_url`
// empty: no NATS runs.
Runs RunInTurns(const NetOptions& options, const tcp::endpoint& tcp_where,
                const tcp::endpoint& http_where, const tcp::endpoint& tls_where,
                asio::ssl::context& tls, RedisBaseline* redis, const std::string& nats_url) {
  constexpr int kRounds = 6;
  NetOptions slice = options;
  slice.seconds = options.seconds / kRounds;
  std::vector<RunResult> depth1, tls1, deep, tls_deep, nats, redis1, redis_deep, http;
  for (int round = 0; round < kRounds; ++round) {
    bool forward = round % 2 == 0;
    auto turn = [&](std::vector<RunResult>& plain, std::vector<RunResult>& over_tls,
                    std::vector<RunResult>& baseline, int depth, bool with_http) {
      auto redis_slice = [&] {
        if (redis == nullptr) return;
        RunResult result;
        // redis-benchmark's single-threaded mode: in slices this short its threaded one ran at
        // about half the rate (docs/performance.md, "Against redis-server").
        result.per_s = redis->Slice(options.connections, depth, slice.seconds);
        baseline.push_back(result);
      };
      if (!forward) redis_slice();
      if (!forward) over_tls.push_back(RunTcp(tls_where, slice, depth, &tls));
      if (!forward && with_http) http.push_back(RunHttp(http_where, slice));
      plain.push_back(RunTcp(tcp_where, slice, depth));
      if (forward && with_http) http.push_back(RunHttp(http_where, slice));
      if (forward) over_tls.push_back(RunTcp(tls_where, slice, depth, &tls));
      if (forward) redis_slice();
    };
    turn(depth1, tls1, redis1, 1, /*with_http=*/true);
    turn(deep, tls_deep, redis_deep, options.depth, /*with_http=*/false);
    if (!nats_url.empty()) nats.push_back(RunNats(nats_url, slice));
  }
  Runs runs;
  runs.depth1 = Merge(depth1);
  runs.deep = Merge(deep);
  runs.tls1 = Merge(tls1);
  runs.tls_deep = Merge(tls_deep);
  if (!nats_url.empty()) runs.over_nats = Merge(nats);
  runs.over_http = Merge(http);
  runs.tls1_median_ratio = MedianRatio(tls1, depth1);
  runs.tls_deep_median_ratio = MedianRatio(tls_deep, deep);
  runs.http_median_ratio = MedianRatio(http, depth1);
  // A failed redis slice (0) makes its figures null rather than low.
  auto failed = [](const std::vector<RunResult>& v) {
    return v.empty() || std::any_of(v.begin(), v.end(), [](auto& r) { return r.per_s <= 0; });
  };
  if (!failed(redis1) && !failed(redis_deep)) {
    // Each slice's rate weighs as long as the slice was meant to run (redis-benchmark is given
    // a request count, not a time: its slices last about, not exactly, as long).
    auto mean = [](const std::vector<RunResult>& v) {
      double sum = 0;
      for (const auto& r : v) sum += r.per_s;
      return sum / static_cast<double>(v.size());
    };
    runs.redis1 = mean(redis1);
    runs.redis_deep = mean(redis_deep);
    runs.redis1_median_ratio = MedianRatio(depth1, redis1);
    runs.redis_deep_median_ratio = MedianRatio(deep, redis_deep);
  }
  return runs;
}

}  // namespace

Figures RunNetBench(const NetOptions& options) {
  // The node's start-up log would go to stdout, where --json promises one object.
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);
  bool nats = options.transport == "nats";
  double idle_cpu_percent =
      options.idle_seconds > 0 ? MeasureIdleNodeCpuPercent(options.idle_seconds) : -1;
  std::unique_ptr<NatsServerProcess> nats_server;
  std::string nats_url = options.nats_url;
  if (nats && nats_url.empty()) {
    nats_server = std::make_unique<NatsServerProcess>();
    nats_url = nats_server->url();
  }
  double idle_cpu_percent_nats = nats && options.idle_seconds > 0
                                     ? MeasureIdleNodeCpuPercent(options.idle_seconds, nats_url)
                                     : -1;
  std::string nats_listener =
      nats ? fmt::format("[[listener]]\nurl = \"{}\"\n", nats_url) : std::string();
  CertDir certs;
  std::unique_ptr<services::Node> node = StartBenchNode(certs, nats_listener);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  double idle_rss_mb = RssMb();
  auto urls = node->listener_urls();
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.load_verify_file(certs.files.ca);
  tls.set_verify_mode(asio::ssl::verify_peer);
  SSL_CTX_set_ciphersuites(tls.native_handle(), "TLS_AES_128_GCM_SHA256");  // as shardkit's client
  std::unique_ptr<RedisBaseline> redis = RedisBaseline::Start(kKeys, kValueBytes);
  Runs runs = RunInTurns(options, EndpointOf(urls.at(0)), EndpointOf(urls.at(1)),
                         EndpointOf(urls.at(2)), tls, redis.get(), nats ? nats_url : std::string());
  redis.reset();
  const RunResult &depth1 = runs.depth1, &deep = runs.deep, &tls1 = runs.tls1,
                  &tls_deep = runs.tls_deep, &over_nats = runs.over_nats,
                  &over_http = runs.over_http;
  node->Stop(std::chrono::milliseconds(1000));
  spdlog::set_level(level);

  Figures figures{
      {"tcp_depth1_per_s", depth1.per_s},
      {"tcp_depth16_per_s", deep.per_s},
      {"http_per_s", over_http.per_s},
      {"tcp_depth1_p50_ms", depth1.p50_ms},
      {"tcp_depth1_p99_ms", depth1.p99_ms},
      {"tcp_depth16_p99_ms", deep.p99_ms},
      {"idle_rss_mb", idle_rss_mb},
      {"client_threads", static_cast<double>(options.client_threads)},
      {"tls_depth1_per_s", tls1.per_s},
      {"tls_depth16_per_s", tls_deep.per_s},
      {"tls_vs_tcp_depth1_ratio", depth1.per_s > 0 ? tls1.per_s / depth1.per_s : 0},
      {"tls_vs_tcp_depth16_ratio", deep.per_s > 0 ? tls_deep.per_s / deep.per_s : 0},
      {"tls_vs_tcp_depth1_median_ratio", runs.tls1_median_ratio},
      {"tls_vs_tcp_depth16_median_ratio", runs.tls_deep_median_ratio},
      {"redis_depth1_per_s", runs.redis1},
      {"redis_depth16_per_s", runs.redis_deep},
      {"tcp_vs_redis_depth1_ratio", depth1.per_s / runs.redis1},
      {"tcp_vs_redis_depth16_ratio", deep.per_s / runs.redis_deep},
      {"tcp_vs_redis_depth1_median_ratio", runs.redis1_median_ratio},
      {"tcp_vs_redis_depth16_median_ratio", runs.redis_deep_median_ratio},
      {"http_vs_tcp_depth1_ratio", depth1.per_s > 0 ? over_http.per_s / depth1.per_s : 0},
      {"http_vs_tcp_depth1_median_ratio", runs.http_median_ratio},
  };
  if (idle_cpu_percent >= 0) figures.push_back({"idle_cpu_percent", idle_cpu_percent});
  if (idle_cpu_percent_nats >= 0)
    figures.push_back({"idle_cpu_percent_nats", idle_cpu_percent_nats});
  if (nats) {
    figures.push_back({"nats_depth16_per_s", over_nats.per_s});
    figures.push_back({"nats_p50_ms", over_nats.p50_ms});
    figures.push_back({"nats_p99_ms", over_nats.p99_ms});
    figures.push_back({"nats_vs_tcp_ratio", deep.per_s > 0 ? over_nats.per_s / deep.per_s : 0});
  }
  return figures;
}

}  // namespace shardkit::bench
