// Helpers shared by the services tests: temp dirs, nodes from TOML text, raw sockets (for bad
// input a real client would never send), waiting for many async replies. Every wait is bounded.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "shardkit/message/codec.h"
#include "shardkit/services/client.h"
#include "shardkit/services/config.h"
#include "shardkit/services/node.h"

// A component a test needs (nats-server, curl, `ip netns`). Without CI the test is skipped and
// says what to install; with CI set the test fails instead, naming the package: scripts/bootstrap
// installs every component, so a CI machine without one is broken, not a reason to pass.
#define SHARDKIT_REQUIRE_COMPONENT(ok, problem, package)                                \
  do {                                                                                  \
    if (!(ok)) {                                                                        \
      if (std::getenv("CI") != nullptr)                                                 \
        GTEST_FAIL() << (problem) << " (CI is set; install the Debian package " package \
                     << ", as scripts/bootstrap does)";                                 \
      GTEST_SKIP() << (problem) << " (install the Debian package " package ")";         \
    }                                                                                   \
  } while (false)

namespace shardkit::services::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "shardkit-svc-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }
  std::string Write(std::string_view name, std::string_view text) const {
    std::string file = File(name);
    std::ofstream(file, std::ios::trunc) << text;
    return file;
  }

 private:
  std::string path_;
};

// A node from TOML text; fails the test if it does not start.
inline std::unique_ptr<Node> StartNode(std::string_view toml) {
  auto config = ParseNodeConfig(toml, "test.toml");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  if (!config.ok()) return nullptr;
  auto node = Node::Start(std::move(config).value());
  EXPECT_TRUE(node.ok()) << node.status().ToString();
  if (!node.ok()) return nullptr;
  return std::move(node).value();
}

inline Message Msg(std::string_view json) {
  auto parsed = ParseMessage(json);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString() << " in " << json;
  return parsed.ok() ? std::move(parsed).value() : Message();
}

inline std::shared_ptr<Handler> Client(IoRuntime& runtime, const std::string& url,
                                       ClientOptions options = {}) {
  auto endpoint = ParseEndpoint(url);
  EXPECT_TRUE(endpoint.ok()) << endpoint.status().ToString();
  return std::move(MakeClient(runtime, *endpoint, options)).value();
}

// Counts async replies; Wait is bounded.
class Replies {
 public:
  ReplyFn Collect() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++expected_;
    }
    return [this](Result<Message> result) {
      std::lock_guard<std::mutex> lock(mutex_);
      results_.push_back(std::move(result));
      done_.notify_all();
    };
  }
  // All replies, or fails the test after `timeout`.
  std::vector<Result<Message>> Wait(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mutex_);
    bool all = done_.wait_for(lock, timeout, [&] { return results_.size() == expected_; });
    EXPECT_TRUE(all) << results_.size() << " of " << expected_ << " replies arrived";
    return results_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  size_t expected_ = 0;
  std::vector<Result<Message>> results_;
};

// "tcp://127.0.0.1:40123" -> 40123.
inline uint16_t PortOf(const std::string& url) {
  return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

// A blocking POSIX socket to 127.0.0.1 with bounded reads.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawSocket() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }
  bool Send(std::string_view bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads until `want` bytes arrived, the peer closed, or `timeout` passed.
  std::string Read(size_t want, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::string out;
    auto until = std::chrono::steady_clock::now() + timeout;
    while (out.size() < want) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buffer[65536];
      ssize_t n = recv(fd_, buffer, std::min(sizeof(buffer), want - out.size()), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }
  // Whether the peer closes the connection within `timeout` (data read meanwhile is dropped).
  bool ClosedWithin(std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (!closed_ && std::chrono::steady_clock::now() < until)
      Read(1 << 20, std::chrono::milliseconds(50));
    return closed_;
  }
  // One HTTP response (headers and a Content-Length body), as text.
  std::string ReadHttpResponse(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::string out;
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until && !closed_) {
      size_t end = out.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t at = out.find("Content-Length: ");
        size_t length = at == std::string::npos ? 0 : std::stoul(out.substr(at + 16));
        if (out.size() >= end + 4 + length) return out;
      }
      out += Read(1, std::chrono::milliseconds(100));
    }
    return out;
  }
  // One reply frame (length-prefixed), parsed.
  Result<Message> ReadFrame(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::string header = Read(4, timeout);
    if (header.size() < 4) return Status::Unavailable("no frame");
    auto b = reinterpret_cast<const unsigned char*>(header.data());
    size_t length = (size_t{b[0]} << 24) | (size_t{b[1]} << 16) | (size_t{b[2]} << 8) | b[3];
    std::string body = Read(length, timeout);
    if (body.size() < length) return Status::Unavailable("truncated frame");
    return ParseMessage(body);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
};

inline std::string Frame(std::string_view json) {
  std::string out(4, '\0');
  uint32_t n = static_cast<uint32_t>(json.size());
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
  out += json;
  return out;
}

}  // namespace shardkit::services::testing
