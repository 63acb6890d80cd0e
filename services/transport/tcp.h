// The TCP transport: length-prefixed JSON frames (wire.h), many requests in flight per connection.
//
// Server: one strand per connection. Each read takes as many bytes as the socket has; every
// complete frame in them is dispatched, and the replies that are ready at once (synchronous
// handlers) are written with one write. Later replies are posted to the strand and batched while a
// write is in progress. A per-connection sweep timer answers `timeout` for requests past their
// deadline and drops a connection whose partial frame has waited longer than read_timeout_ms.
// A frame longer than max_message_bytes cannot be skipped safely: it is answered with an error and
// the connection is closed. A frame that is not a valid message is answered with an error (no id)
// and the connection carries on, since framing is intact.
//
// Client: a pool of connections, each with its own strand; requests are matched to replies by
// meta$.id. A lost connection fails its requests `unavailable`; the next request reconnects.
#pragma once

#include "io.h"

#include <boost/asio/buffer.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace shardkit::services {

inline constexpr auto kSweepInterval = std::chrono::milliseconds(50);
inline constexpr size_t kReadChunk = 64 * 1024;

inline constexpr size_t kInitialRead = 16 * 1024;

// Receive buffer: bytes [0, used) are data. It grows as bytes arrive (doubling), never from a
// frame's announced length: a peer that announces 4 MiB and sends 4 bytes costs 16 KiB.
struct ReadBuffer {
  std::vector<char> bytes = std::vector<char>(kInitialRead);
  size_t used = 0;

  asio::mutable_buffer Free() {
    if (bytes.size() - used < 4096) bytes.resize(std::max(bytes.size() * 2, used + kReadChunk));
    return asio::buffer(bytes.data() + used, bytes.size() - used);
  }
  // Drops [0, consumed), keeps the rest; gives back a large buffer once the big frame that needed
  // it (`next_frame`: the length of the incomplete frame kept, 0 if none) is done.
  void Consume(size_t consumed, size_t next_frame) {
    if (consumed > 0) {
      std::memmove(bytes.data(), bytes.data() + consumed, used - consumed);
      used -= consumed;
    }
    if (bytes.size() > 4 * kReadChunk && used < kReadChunk && next_frame <= kReadChunk) {
      bytes.resize(kReadChunk);
      bytes.shrink_to_fit();
    }
  }
};

}  // namespace shardkit::services
