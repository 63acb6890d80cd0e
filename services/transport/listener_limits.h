// Internal: what bounds a listener's resources (docs/security.md, docs/configuration.md): the
// counts of connections per listener and per peer address, the counters of refused connections
// and dropped clients (GET /metrics), and the accept loop's answer to running out of descriptors.
//
// Thread-safety: every class here is safe from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace shardkit::services {

// Why a connection was refused at accept, or a client dropped later.
enum class Refusal { kMaxConnections, kMaxPerPeer, kNoDescriptors, kCount };
// kTlsHandshake: a tls:// or https:// client whose handshake failed, or that spoke plain text.
enum class Drop { kFirstFrameTimeout, kFrameTimeout, kIdle, kNotReading, kTlsHandshake, kCount };

// Shared by every listener of a node.
class ListenerCounters {
 public:
  void Refused(Refusal why) { refused_[static_cast<size_t>(why)].fetch_add(1); }
  void Dropped(Drop why) { dropped_[static_cast<size_t>(why)].fetch_add(1); }
  uint64_t refused(Refusal why) const { return refused_[static_cast<size_t>(why)].load(); }
  uint64_t dropped(Drop why) const { return dropped_[static_cast<size_t>(why)].load(); }
  // shardkit_connections_refused_total{reason} and shardkit_clients_dropped_total{reason}.
  std::string PrometheusText() const;

 private:
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Refusal::kCount)> refused_{};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Drop::kCount)> dropped_{};
};

// The peer a remote address counts as: every loopback address is the one peer "loopback".
std::string PeerOf(const std::string& address);

// A descriptor held in reserve: given up to accept and close one pending connection when the
// process is out of descriptors, so that client is told (its connection closes) instead of
// waiting in the backlog, then taken again.
class ReservedDescriptor {
 public:
  ReservedDescriptor();
  ~ReservedDescriptor();
  // Closes the reserve, accepts and closes one connection on `listen_fd`, takes the reserve again.
  // True if a connection was shed.
  bool Shed(int listen_fd);

 private:
  std::mutex mutex_;
  int fd_ = -1;  // guarded by mutex_
};

// Logs a repeated accept error at most once per interval, with how often it happened meanwhile.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(int64_t interval_ms) : interval_ms_(interval_ms) {}
  void Warn(std::string_view where, std::string_view what);

 private:
  const int64_t interval_ms_;
  std::mutex mutex_;
  int64_t last_ms_ = 0;      // guarded by mutex_
  uint64_t suppressed_ = 0;  // guarded by mutex_
};

}  // namespace shardkit::services
