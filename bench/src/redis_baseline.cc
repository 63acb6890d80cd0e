#include "redis_baseline.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace shardkit::bench {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

tcp::endpoint Loopback(unsigned short port) {
  return tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
}

// In a forked child: the bench's sockets (the node's listeners among them) stay with the bench.
void CloseInherited() { close_range(3, ~0U, 0); }

// Runs `argv` (searched in PATH) and returns its exit status and standard output; stderr is
// inherited. Status 127: it could not be run.
std::pair<int, std::string> RunCapturing(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe(out) != 0) return {127, ""};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    CloseInherited();
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buffer[4096];
  ssize_t n;
  while (pid > 0 && (n = read(out[0], buffer, sizeof buffer)) > 0) text.append(buffer, n);
  close(out[0]);
  int status = 127;
  if (pid > 0) waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 127, text};
}

bool Found(const char* program) {
  return RunCapturing({"sh", "-c", fmt::format("command -v {}", program)}).first == 0;
}

}  // namespace

std::unique_ptr<RedisBaseline> RedisBaseline::Start(int keys, int value_bytes) {
  for (const char* program : {"redis-server", "redis-benchmark"}) {
    if (!Found(program)) {
      fmt::print(stderr,
                 "bench net: no redis baseline: {} not found (Debian packages redis-server and "
                 "redis-tools; scripts/bootstrap installs them)\n",
                 program);
      return nullptr;
    }
  }
  std::string dir = (std::filesystem::temp_directory_path() / "shardkit-bench-redis-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    fmt::print(stderr, "bench net: no redis baseline: mkdtemp failed\n");
    return nullptr;
  }
  // redis-server takes no port 0: a port the kernel hands out now, most likely still free.
  asio::io_context io;
  tcp::acceptor probe(io, Loopback(0));
  unsigned short port = probe.local_endpoint().port();
  probe.close();
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    CloseInherited();
    std::string port_text = std::to_string(port), log = dir + "/redis.log";
    // No snapshots, no append-only file: GETs from memory, as the node's kv store answers.
    execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port_text.c_str(),
           "--save", "", "--appendonly", "no", "--dir", dir.c_str(), "--logfile", log.c_str(),
           nullptr);
    _exit(127);
  }
  std::unique_ptr<RedisBaseline> redis(new RedisBaseline(dir, port, pid, keys, value_bytes));
  if (pid < 0 || !redis->WaitReady() || !redis->Populate()) return nullptr;
  return redis;
}

RedisBaseline::~RedisBaseline() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

bool RedisBaseline::WaitReady() {
  asio::io_context io;
  for (int i = 0; i < 300; ++i) {
    boost::system::error_code ec;
    tcp::socket socket(io);
    socket.connect(Loopback(port_), ec);
    if (!ec) return true;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::ifstream log(dir_ + "/redis.log");
  std::stringstream text;
  text << log.rdbuf();
  fmt::print(stderr, "bench net: no redis baseline: redis-server did not start on port {}: {}\n",
             port_, text.str());
  return false;
}

// SET key:<12 digits> for every key, pipelined on one connection.
bool RedisBaseline::Populate() {
  const std::string value(static_cast<size_t>(value_bytes_), 'x');
  std::string commands;
  for (int key = 0; key < keys_; ++key) {
    commands += fmt::format("*3\r\n$3\r\nSET\r\n$16\r\nkey:{:012}\r\n${}\r\n{}\r\n", key,
                            value.size(), value);
  }
  const std::string ok = "+OK\r\n";
  try {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(Loopback(port_));
    asio::write(socket, asio::buffer(commands));
    std::string replies(ok.size() * static_cast<size_t>(keys_), '\0');
    asio::read(socket, asio::buffer(replies));
    for (size_t at = 0; at < replies.size(); at += ok.size()) {
      if (replies.compare(at, ok.size(), ok) != 0) {
        fmt::print(stderr, "bench net: no redis baseline: SET answered {}\n", replies.substr(at));
        return false;
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench net: no redis baseline: populating: {}\n", e.what());
    return false;
  }
  return true;
}

double RedisBaseline::Slice(int connections, int depth, double seconds) {
  double& rate = last_rate_[depth > 1 ? 1 : 0];
  // The first slice at a depth has no rate to go by: a short run first, not counted, which also
  // warms up (as the node's runs have 300 ms of warm-up).
  if (rate <= 0) rate = Run(connections, depth, 200.0 * connections * std::min(depth, 8));
  if (rate <= 0) return 0;
  double per_s = Run(connections, depth, rate * seconds);
  if (per_s > 0) rate = per_s;
  return per_s;
}

double RedisBaseline::Run(int connections, int depth, double requests) {
  const auto [status, out] =
      RunCapturing({"redis-benchmark", "-h", "127.0.0.1", "-p", std::to_string(port_), "-t", "get",
                    "-n", std::to_string(static_cast<int64_t>(std::max(requests, 1000.0))), "-c",
                    std::to_string(connections), "-P", std::to_string(depth), "-d",
                    std::to_string(value_bytes_), "-r", std::to_string(keys_), "--csv"});
  // --csv: a header line, then "GET","<rps>",... per test.
  const size_t at = out.find("\"GET\",\"");
  double per_s = 0;
  if (status == 0 && at != std::string::npos) per_s = std::strtod(out.c_str() + at + 7, nullptr);
  if (per_s <= 0)
    fmt::print(stderr, "bench net: redis-benchmark failed (exit {}): {}\n", status, out);
  return per_s;
}

}  // namespace shardkit::bench
