// The TCP frame reader: bytes arrive in chunks of varying size (the first two input bytes seed
// the chunk sizes) into the listener's ReadBuffer; ScanFrame takes frames apart as the listener
// does, and each frame goes through the listener's steps (parse, admission, the wire reply).
// Properties: the frames taken are exactly the bytes sent, in order; a reply is one whole frame
// of valid JSON.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "access.h"
#include "check.h"
#include "tcp.h"
#include "wire.h"

namespace services = shardkit::services;

namespace {

constexpr size_t kMaxMessageBytes = 64 * 1024;

void CheckReply(shardkit::Result<shardkit::Message> result) {
  std::string frame;
  services::AppendFrame(services::ReplyWire(std::move(result), "r1"), frame);
  services::FrameScan scan = services::ScanFrame(frame, SIZE_MAX);
  FUZZ_CHECK(scan.kind == services::FrameScan::Kind::kFrame && scan.size == frame.size());
  FUZZ_CHECK(shardkit::ParseMessage(scan.body).ok());
}

void HandleFrame(std::string_view body, const services::ListenerConfig& config) {
  shardkit::CodecLimits limits;
  limits.max_bytes = config.max_message_bytes;
  auto parsed = shardkit::ParseMessage(body, limits);
  if (!parsed.ok()) return CheckReply(parsed.status());
  shardkit::Message message = std::move(parsed).value();
  shardkit::Status admitted = services::AdmitIncoming(message, config, services::ListenerHooks{},
                                                      services::AnonymousCaller(config), 1'000'000);
  if (!admitted.ok()) return CheckReply(admitted);
  // External: routing fields stripped, and no operation (sys:*, but Seneca's sys:entity, is one).
  FUZZ_CHECK(!message.Has("sys") || message.GetString("sys") == std::string_view("entity"));
  FUZZ_CHECK(!message.Has("shard"));
  FUZZ_CHECK(message.meta().deadline <= 1'000'000 + config.request_timeout_ms);
  CheckReply(std::move(message));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint32_t seed = uint32_t{data[0]} << 8 | data[1];
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  services::ListenerConfig config;
  config.external = true;
  config.max_message_bytes = kMaxMessageBytes;

  services::ReadBuffer in;
  std::string taken;  // the frames' bytes, in the order they were taken
  size_t sent = 0;
  while (sent < input.size()) {
    seed = seed * 1103515245 + 12345;
    services::asio::mutable_buffer free = in.Free();
    const size_t chunk =
        std::min({input.size() - sent, free.size(), size_t{1} + (seed >> 16) % 97});
    std::memcpy(free.data(), input.data() + sent, chunk);
    sent += chunk;
    in.used += chunk;
    FUZZ_CHECK(in.used <= in.bytes.size());

    size_t pos = 0, next_frame = 0;
    while (true) {
      services::FrameScan scan =
          services::ScanFrame({in.bytes.data() + pos, in.used - pos}, kMaxMessageBytes);
      if (scan.kind == services::FrameScan::Kind::kTooLarge) {
        FUZZ_CHECK(scan.size > kMaxMessageBytes);
        return 0;  // the listener answers 413 and closes
      }
      if (scan.kind == services::FrameScan::Kind::kPartial) {
        FUZZ_CHECK(scan.size == 0 || scan.size > in.used - pos);
        next_frame = scan.size;
        break;
      }
      FUZZ_CHECK(scan.size == services::kFrameHeaderBytes + scan.body.size());
      taken.append(in.bytes.data() + pos, scan.size);
      HandleFrame(scan.body, config);
      pos += scan.size;
    }
    in.Consume(pos, next_frame);
    // The buffer holds what arrived; it grows as bytes arrive, not to an announced length.
    FUZZ_CHECK(in.bytes.size() >= in.used);
  }
  FUZZ_CHECK(input.substr(0, taken.size()) == taken);
  FUZZ_CHECK(taken.size() + in.used == input.size());
  return 0;
}
