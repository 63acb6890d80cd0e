// `shardkit bench net`: a node in this process serving store:load from the in-memory kv service
// (100-byte values), driven over loopback by `connections` clients: TCP at depth 1 and in batches
// of options.depth requests per connection (as redis-benchmark -P), and HTTP/1.1 keep-alive (one
// request at a time per connection). The same TCP work over TLS (tls://, certificates made at
// start) and the HTTP run take turns with the plain runs in slices (RunInTurns), so a slow spell of
// a shared machine weighs on all alike. The node runs with `node_threads` I/O threads (default
// two, the node's own default) and the clients on `client_threads` more (2: one thread's TLS work
// capped the TLS runs), all on the same machine, so the figures are what the whole loop (client +
// node) achieves. The baseline, in the same turns: redis-server's GET on the same number of keys
// and value size, timed by redis-benchmark with the same connections and depth (redis_baseline.h).
//
// idle_rss_mb is this process's resident memory after the node has started and before any
// traffic: the node plus the benchmark's own code and libraries (an upper bound for a node alone).
// idle_cpu_percent is measured first, on its own node with background workers (idle_node.h);
// with --transport nats, idle_cpu_percent_nats the same with a NATS listener and a cluster.
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "idle_node.h"
#include "net_clients.h"
#include "net_nats.h"
#include "net_run.h"
#include "redis_baseline.h"
#include "shardkit/bench/bench.h"
#include "shardkit/message/codec.h"
#include "shardkit/services/config.h"
#include "shardkit/services/node.h"
#include "shardkit/testing/test_certs.h"
#include "stats.h"

namespace shardkit::bench {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

double RssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
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
std::unique_ptr<services::Node> StartBenchNode(const CertDir& certs, int threads,
                                               const std::string& nats_listener) {
  auto config = services::ParseNodeConfig(
      fmt::format(R"(
[node]
name = "bench"
threads = {}
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
                  threads, certs.files.server_cert, certs.files.server_key, nats_listener, kKeys,
                  kValueBytes),
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
  return Median(std::move(ratios));
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
  std::unique_ptr<services::Node> node = StartBenchNode(certs, options.node_threads, nats_listener);
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
      {"node_threads", static_cast<double>(options.node_threads)},
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
