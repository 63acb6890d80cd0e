// `shardkit bench net --transport nats`: the bench's nats-server and the run over NATS.
#include "net_nats.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "shardkit/services/client.h"

namespace shardkit::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

NatsServerProcess::NatsServerProcess()
    : store_(fmt::format("/tmp/shardkit-bench-nats-{}", getpid())) {
  asio::io_context io;
  tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  port_ = probe.local_endpoint().port();
  probe.close();
  pid_ = fork();
  if (pid_ == 0) {
    std::string port = std::to_string(port_);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    // One Go scheduler thread: on a small machine the node and the client need the other
    // cores, and a server with one P hands messages between its goroutines without waking OS
    // threads (docs/performance.md, "Over NATS"). An explicit GOMAXPROCS is kept.
    setenv("GOMAXPROCS", "1", /*overwrite=*/0);
    // JetStream (in a temp dir) for the idle node's cluster.
    execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port.c_str(), "-js", "-sd",
           store_.c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 300; ++i) {
    boost::system::error_code ec;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    if (!ec) return;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error(
      "bench net: could not start nats-server (install it, or pass --nats URL)");
}
NatsServerProcess::~NatsServerProcess() {
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  std::error_code ignored;
  std::filesystem::remove_all(store_, ignored);
}
std::string NatsServerProcess::url() const { return fmt::format("nats://127.0.0.1:{}", port_); }

// Closed loop: `lanes` requests in flight through a shardkit NATS client; each reply sends the
// next. Counts and latencies are taken between warm-up and the end, as in the TCP runs.
RunResult RunNats(const std::string& url, const NetOptions& options) {
  services::IoRuntime runtime(1);
  auto endpoint = services::ParseEndpoint(url);
  if (!endpoint.ok()) throw std::runtime_error(endpoint.status().ToString());
  auto client = services::MakeClient(runtime, *endpoint);
  if (!client.ok()) throw std::runtime_error(client.status().ToString());
  std::shared_ptr<Handler> handler = *client;

  struct Shared {
    std::mutex mutex;
    std::condition_variable idle;
    std::vector<uint32_t> latencies_us;  // guarded by mutex
    uint64_t completed = 0;              // guarded by mutex
    int in_flight = 0;                   // guarded by mutex
    std::atomic<bool> counting{false};
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> seq{1};
    std::string error;  // guarded by mutex
  };
  auto shared = std::make_shared<Shared>();
  std::function<void(int)> send = [&, shared](int key) {
    // The message LoadRequest() writes, built as a client builds one (not parsed from JSON).
    Message message;
    message.SetString("store", "load")
        .SetString("kind", "entry")
        .SetString("id", std::to_string(key % kKeys));
    message.meta().id = std::to_string(shared->seq.fetch_add(1));
    auto sent = Clock::now();
    Context context(nullptr, nullptr, message.meta());
    handler->Handle(std::move(message), context, [&, shared, sent, key](Result<Message> reply) {
      bool again = !shared->stopping.load();
      {
        std::lock_guard<std::mutex> lock(shared->mutex);
        if (!reply.ok() && shared->error.empty()) shared->error = reply.status().ToString();
        if (reply.ok() && shared->counting.load()) {
          ++shared->completed;
          shared->latencies_us.push_back(static_cast<uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count()));
        }
        if (!again || !reply.ok()) {
          --shared->in_flight;
          shared->idle.notify_all();
          return;
        }
      }
      send(key + 1);
    });
  };
  int lanes = options.connections * options.depth;
  {
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->in_flight = lanes;
  }
  for (int i = 0; i < lanes; ++i) send(i * 37);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  shared->counting = true;
  auto started = Clock::now();
  std::this_thread::sleep_for(
      std::chrono::milliseconds(static_cast<int64_t>(options.seconds * 1000)));
  shared->counting = false;
  auto ended = Clock::now();
  shared->stopping = true;
  std::unique_lock<std::mutex> lock(shared->mutex);
  shared->idle.wait_for(lock, std::chrono::seconds(10), [&] { return shared->in_flight == 0; });
  if (!shared->error.empty()) throw std::runtime_error("bench net over NATS: " + shared->error);
  RunResult result;
  double elapsed = std::chrono::duration<double>(ended - started).count();
  result.per_s = static_cast<double>(shared->completed) / elapsed;
  result.p50_ms = Percentile(shared->latencies_us, 0.50);
  result.p99_ms = Percentile(shared->latencies_us, 0.99);
  result.completed = shared->completed;
  result.elapsed_s = elapsed;
  result.latencies_us = std::move(shared->latencies_us);
  return result;
}

}  // namespace shardkit::bench
