// Bounded resources on every listener (docs/security.md), against real `shardkit serve`
// processes and real sockets: connections announcing large frames, idle connections, a client
// that never reads its replies, and the process running out of file descriptors.
#include <fcntl.h>
#include <gmock/gmock.h>

#include <set>
#include <thread>

#include "serve_process.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

// A node of the echo service behind `listeners` (its [[listener]] tables), with `node_keys` in
// its [node] table.
std::string EchoNodeOf(const TempDir& dir, std::string_view listeners,
                       std::string_view node_keys = "") {
  return dir.Write("node.toml",
                   fmt::format("[node]\n{}\n{}\n[[service]]\nname = \"echo\"\ntype = \"echo\"\n",
                               node_keys, listeners));
}

// A TCP listener (`tcp_keys` added to it) and an HTTP one.
std::string EchoNode(const TempDir& dir, std::string_view tcp_keys = "") {
  return EchoNodeOf(dir, fmt::format("[[listener]]\nurl = \"tcp://127.0.0.1:0\"\n{}\n"
                                     "[[listener]]\nurl = \"http://127.0.0.1:0\"",
                                     tcp_keys));
}

// One HTTP listener (`listener_keys` added to it); `node_keys` in the [node] table.
std::string HttpEchoNode(const TempDir& dir, std::string_view node_keys,
                         std::string_view listener_keys) {
  return EchoNodeOf(
      dir, fmt::format("[[listener]]\nurl = \"http://127.0.0.1:0\"\n{}", listener_keys), node_keys);
}

// An HTTP/1.1 POST /act of `body`.
std::string Post(std::string_view body) {
  return fmt::format("POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{}", body.size(),
                     body);
}

// A /proc/<pid>/status field in kB (VmRSS).
int64_t StatusKb(pid_t pid, std::string_view field) {
  std::istringstream in(ReadFile(fmt::format("/proc/{}/status", pid)));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field)) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

// User + system CPU seconds the process has used.
double CpuSeconds(pid_t pid) {
  std::string stat = ReadFile(fmt::format("/proc/{}/stat", pid));
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::vector<std::string> f(std::istream_iterator<std::string>(fields), {});
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// An ordinary client: one echo over a fresh connection, answered within 2 s.
bool OrdinaryClientAnswered(const std::string& url) {
  IoRuntime runtime(1);
  auto client = Client(runtime, url, ClientOptions{.timeout = std::chrono::seconds(2)});
  return CallAndWait(*client, Msg(R"({"role":"echo","n":1})")).ok();
}

std::string Metrics(const std::string& http_url) {
  RawSocket socket(PortOf(http_url));
  socket.Send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  return socket.Read(1 << 20, std::chrono::seconds(3));
}

TEST(LimitsTest, FiveHundredConnectionsAnnouncingFourMiBFramesKeepTheNodeSmall) {
  TempDir dir;
  ServeProcess serve(dir, EchoNode(dir));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u) << serve.log();
  std::vector<std::unique_ptr<RawSocket>> sockets;
  for (int i = 0; i < 500; ++i) {
    sockets.push_back(std::make_unique<RawSocket>(PortOf(urls[0])));
    ASSERT_TRUE(sockets.back()->connected()) << i;
    // 4 MiB announced (the limit), 4 bytes of it sent.
    ASSERT_TRUE(sockets.back()->Send(std::string("\x00\x40\x00\x00{\"a\"", 8)));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(OrdinaryClientAnswered(urls[0]));
  int64_t rss_kb = StatusKb(serve.pid(), "VmRSS:");
  std::printf("500 connections announcing 4 MiB: node RSS %.1f MB\n", rss_kb / 1024.0);
  EXPECT_LT(rss_kb, 100 * 1024);
}

TEST(LimitsTest, FiveHundredIdleConnectionsDoNotStopAnOrdinaryClientAndAreClosedInTime) {
  TempDir dir;
  ServeProcess serve(dir, EchoNode(dir, "read_timeout_ms = 2000"));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u) << serve.log();
  std::vector<std::unique_ptr<RawSocket>> sockets;
  for (int i = 0; i < 500; ++i) {
    sockets.push_back(std::make_unique<RawSocket>(PortOf(urls[0])));
    ASSERT_TRUE(sockets.back()->connected()) << i;
  }
  EXPECT_TRUE(OrdinaryClientAnswered(urls[0]));
  // Nothing sent within read_timeout_ms of connecting: each is closed and counted.
  size_t closed = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  for (auto& socket : sockets) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    closed += socket->ClosedWithin(std::max(left, std::chrono::milliseconds(1))) ? 1 : 0;
  }
  EXPECT_EQ(closed, 500u);
  EXPECT_THAT(Metrics(urls[1]),
              HasSubstr("shardkit_clients_dropped_total{reason=\"first_frame_timeout\"} 500"));
  EXPECT_TRUE(OrdinaryClientAnswered(urls[0]));
}

TEST(LimitsTest, ConnectionsPastThePerPeerLimitAreRefusedAndCounted) {
  TempDir dir;
  ServeProcess serve(dir, EchoNode(dir, "max_connections_per_peer = 3"));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u) << serve.log();
  std::vector<std::unique_ptr<RawSocket>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<RawSocket>(PortOf(urls[0])));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  RawSocket fourth(PortOf(urls[0]));
  EXPECT_TRUE(fourth.ClosedWithin(std::chrono::seconds(2)));
  EXPECT_THAT(
      Metrics(urls[1]),
      HasSubstr("shardkit_connections_refused_total{reason=\"max_connections_per_peer\"} 1"));
  held.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(OrdinaryClientAnswered(urls[0]));
}

// A client that sends `request` over and over and never reads: whether the node cut it off
// (the send failed or the socket hung up) within 20 s, and the bytes it had sent by then.
struct NeverRead {
  bool cut_off = false;
  size_t sent_bytes = 0;
};
NeverRead SendWithoutReading(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int small = 64 * 1024;  // a small receive buffer: the node's writes stall soon
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  NeverRead run;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    ADD_FAILURE() << "connect to port " << port << " failed";
    return run;
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until && !run.cut_off) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    if (p.revents & (POLLERR | POLLHUP)) {
      run.cut_off = true;
      break;
    }
    ssize_t n = send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) run.cut_off = true;
    if (n > 0) run.sent_bytes += static_cast<size_t>(n);
  }
  close(fd);
  return run;
}

// Requests of 64 KiB are sent without ever reading a reply: the node stops reading the
// connection once a bounded amount of replies waits, then drops it after write_timeout_ms.
TEST(LimitsTest, AClientThatNeverReadsIsCutOffWithMemoryBounded) {
  TempDir dir;
  ServeProcess serve(dir, EchoNode(dir, "write_timeout_ms = 1000"));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u) << serve.log();
  const std::string frame =
      Frame(fmt::format(R"({{"role":"echo","pad":"{}"}})", std::string(65536, 'x')));
  const NeverRead run = SendWithoutReading(PortOf(urls[0]), frame);
  int64_t rss_kb = StatusKb(serve.pid(), "VmRSS:");
  std::printf("sent %.1f MB without reading; cut off: %d; node RSS %.1f MB\n", run.sent_bytes / 1e6,
              run.cut_off, rss_kb / 1024.0);
  EXPECT_TRUE(run.cut_off);
  EXPECT_LT(rss_kb, 100 * 1024);
  EXPECT_THAT(Metrics(urls[1]),
              HasSubstr("shardkit_clients_dropped_total{reason=\"not_reading\"} 1"));
  EXPECT_TRUE(OrdinaryClientAnswered(urls[0]));
}

// Out of descriptors: the accept loop pauses instead of spinning, logs a bounded number of
// lines, sheds waiting clients, and serves again once descriptors free up.
TEST(LimitsTest, RunningOutOfDescriptorsCostsLittleAndTheNodeRecovers) {
  TempDir dir;
  ServeProcess serve(dir, EchoNode(dir), /*max_open_files=*/64);
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u) << serve.log();
  std::vector<std::unique_ptr<RawSocket>> sockets;
  for (int i = 0; i < 120; ++i) sockets.push_back(std::make_unique<RawSocket>(PortOf(urls[0])));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double cpu_before = CpuSeconds(serve.pid());
  auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(4));
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  double core_share = (CpuSeconds(serve.pid()) - cpu_before) / elapsed;
  std::string log = serve.log();
  size_t accept_lines = 0;
  for (size_t at = log.find("accept failed"); at != std::string::npos;
       at = log.find("accept failed", at + 1))
    ++accept_lines;
  std::printf("out of descriptors: %.2f%% of a core, %zu accept lines, log %zu bytes\n",
              core_share * 100, accept_lines, log.size());
  EXPECT_LT(core_share, 0.05);
  EXPECT_GE(accept_lines, 1u);
  EXPECT_LE(accept_lines, 2u);  // at most one per 10 s
  EXPECT_LT(log.size(), 64u * 1024);
  sockets.clear();
  bool served = false;
  for (int i = 0; i < 20 && !served; ++i) served = OrdinaryClientAnswered(urls[0]);
  EXPECT_TRUE(served);
}

// SIGTERM while requests sit unread in the connection (reads are paused: one in flight at a time):
// the one in flight gets its reply and every unread one `unavailable` "stopping", none nothing.
TEST(LimitsTest, OnStopEveryRequestSentIsAnswered) {
  TempDir dir;
  ServeProcess serve(dir, EchoNode(dir, "max_in_flight_per_connection = 1"));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u) << serve.log();
  RawSocket socket(PortOf(urls[0]));
  ASSERT_TRUE(socket.Send(Frame(R"({"role":"echo","delay_ms":1500,"meta$":{"id":"first"}})")));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string unread;
  for (int i = 0; i < 16; ++i)
    unread += Frame(fmt::format(R"({{"role":"echo","meta$":{{"id":"r{}"}}}})", i));
  ASSERT_TRUE(socket.Send(unread));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  serve.Signal(SIGTERM);
  int ok = 0, stopping = 0;
  std::set<std::string> ids;
  for (int i = 0; i < 17; ++i) {
    auto frame = socket.ReadFrame(std::chrono::seconds(5));
    if (!frame.ok()) break;
    ids.insert(frame->meta().id);
    Result<Message> reply = FromWire(std::move(frame).value());
    if (reply.ok()) {
      ++ok;
    } else if (reply.status().code() == Code::kUnavailable &&
               reply.status().message().find("stopping") != std::string::npos) {
      ++stopping;
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(stopping, 16);
  EXPECT_EQ(ids.size(), 17u);
  EXPECT_EQ(serve.WaitExit(std::chrono::seconds(10)), 0);
}

// The HTTP listener's read limit: a connection that sends nothing, or half a request, is closed
// after read_timeout_ms and counted; one that sends a request within each read_timeout_ms stays
// open however long it lives (the limit moves on with every request).
TEST(LimitsTest, HttpConnectionsAreClosedOnlyWhenAReadTakesLongerThanTheLimit) {
  TempDir dir;
  ServeProcess serve(dir, HttpEchoNode(dir, "", "read_timeout_ms = 1000"));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u) << serve.log();
  RawSocket silent(PortOf(urls[0])), partial(PortOf(urls[0])), steady(PortOf(urls[0]));
  ASSERT_TRUE(partial.Send("POST /act HTTP/1.1\r\nHost: x\r\n"));
  const std::string request = Post(R"({"role":"echo","n":1})");
  // Ten requests 400 ms apart: four seconds, four times the limit, on one connection.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(steady.Send(request)) << i;
    EXPECT_THAT(steady.ReadHttpResponse(), HasSubstr("HTTP/1.1 200")) << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  EXPECT_FALSE(steady.ClosedWithin(std::chrono::milliseconds(1))) << serve.log();
  // The other two were closed within a second of their limit (long before now).
  EXPECT_TRUE(silent.ClosedWithin(std::chrono::milliseconds(1)));
  EXPECT_TRUE(partial.ClosedWithin(std::chrono::milliseconds(1)));
  const std::string metrics = Metrics(urls[0]);
  EXPECT_THAT(metrics, HasSubstr("shardkit_clients_dropped_total{reason=\"idle\"} 1")) << metrics;
  EXPECT_THAT(metrics, HasSubstr("shardkit_clients_dropped_total{reason=\"frame_timeout\"} 1"));
  // Past the limit with nothing sent after its last response, the steady one goes too.
  EXPECT_TRUE(steady.ClosedWithin(std::chrono::seconds(3)));
}

// The HTTP listener's write limit: pipelined requests of 64 KiB whose echoed responses are never
// read. The listener reads the next request only once a response is written, so the connection
// stops at the first response the client does not take; it is closed once that write has taken
// longer than request_timeout_ms + write_timeout_ms, and counted as not reading.
TEST(LimitsTest, AnHttpClientThatNeverReadsItsResponsesIsCutOff) {
  TempDir dir;
  ServeProcess serve(dir, HttpEchoNode(dir, "request_timeout_ms = 500", "write_timeout_ms = 500"));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u) << serve.log();
  const auto started = std::chrono::steady_clock::now();
  const NeverRead run = SendWithoutReading(
      PortOf(urls[0]),
      Post(fmt::format(R"({{"role":"echo","pad":"{}"}})", std::string(65536, 'x'))));
  std::printf("sent %.1f MB without reading; cut off: %d after %.1f s\n", run.sent_bytes / 1e6,
              run.cut_off,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  EXPECT_TRUE(run.cut_off) << serve.log();
  const std::string metrics = Metrics(urls[0]);
  EXPECT_THAT(metrics, HasSubstr("shardkit_clients_dropped_total{reason=\"not_reading\"} 1"))
      << metrics;
  RawSocket other(PortOf(urls[0]));  // another client is served as before
  ASSERT_TRUE(other.Send(Post(R"({"role":"echo","n":1})")));
  EXPECT_THAT(other.ReadHttpResponse(), HasSubstr("HTTP/1.1 200"));
}

}  // namespace
}  // namespace shardkit::services::testing
