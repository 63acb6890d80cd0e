#include "listener_limits.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "wire.h"

namespace shardkit::services {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Refusal::kCount)> kRefusalNames = {
    "max_connections", "max_connections_per_peer", "no_descriptors"};
constexpr std::array<std::string_view, static_cast<size_t>(Drop::kCount)> kDropNames = {
    "first_frame_timeout", "frame_timeout", "idle", "not_reading", "tls_handshake"};

}  // namespace

std::string ListenerCounters::PrometheusText() const {
  std::string out =
      "# HELP shardkit_connections_refused_total Connections closed at accept, per reason.\n"
      "# TYPE shardkit_connections_refused_total counter\n";
  for (size_t i = 0; i < kRefusalNames.size(); ++i)
    out += fmt::format("shardkit_connections_refused_total{{reason=\"{}\"}} {}\n", kRefusalNames[i],
                       refused_[i].load());
  out +=
      "# HELP shardkit_clients_dropped_total Connections the node closed, per reason.\n"
      "# TYPE shardkit_clients_dropped_total counter\n";
  for (size_t i = 0; i < kDropNames.size(); ++i)
    out += fmt::format("shardkit_clients_dropped_total{{reason=\"{}\"}} {}\n", kDropNames[i],
                       dropped_[i].load());
  return out;
}

std::string PeerOf(const std::string& address) {
  unsigned char bytes[16];
  if (inet_pton(AF_INET, address.c_str(), bytes) == 1 && bytes[0] == 127) return "loopback";
  if (address == "::1" || address.starts_with("::ffff:127.")) return "loopback";
  return address;
}

ReservedDescriptor::ReservedDescriptor() { fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

ReservedDescriptor::~ReservedDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

bool ReservedDescriptor::Shed(int listen_fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fd_ < 0) return false;
  pollfd pending{listen_fd, POLLIN, 0};
  if (::poll(&pending, 1, 0) != 1) return false;  // nothing waits: never block here
  ::close(fd_);
  int client = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (client >= 0) ::close(client);
  fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return client >= 0;
}

void RateLimitedLog::Warn(std::string_view where, std::string_view what) {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t now = NowMs();
  if (last_ms_ != 0 && now - last_ms_ < interval_ms_) {
    ++suppressed_;
    return;
  }
  spdlog::warn("{}: {} ({} more since the last report; reported at most every {} s)", where, what,
               suppressed_, interval_ms_ / 1000);
  last_ms_ = now;
  suppressed_ = 0;
}

}  // namespace shardkit::services
