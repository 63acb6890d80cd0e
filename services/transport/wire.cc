#include "wire.h"

#include <array>
#include <chrono>

#include <fmt/format.h>

namespace shardkit::services {

namespace {

void WriteFrameLength(size_t start, std::string& out) {
  const auto length = static_cast<uint32_t>(out.size() - start - kFrameHeaderBytes);
  out[start] = static_cast<char>(length >> 24);
  out[start + 1] = static_cast<char>(length >> 16);
  out[start + 2] = static_cast<char>(length >> 8);
  out[start + 3] = static_cast<char>(length);
}

}  // namespace

void AppendFrame(const Message& message, std::string& out) {
  size_t start = out.size();
  out.append(kFrameHeaderBytes, '\0');
  AppendJson(message, out);
  WriteFrameLength(start, out);
}

FrameScan ScanFrame(std::string_view bytes, size_t max_bytes) {
  if (bytes.size() < kFrameHeaderBytes) return {FrameScan::Kind::kPartial};
  const size_t length = ReadFrameLength(bytes.data());
  if (length > max_bytes) return {FrameScan::Kind::kTooLarge, length};
  if (bytes.size() - kFrameHeaderBytes < length)
    return {FrameScan::Kind::kPartial, kFrameHeaderBytes + length};
  return {FrameScan::Kind::kFrame, kFrameHeaderBytes + length,
          bytes.substr(kFrameHeaderBytes, length)};
}

Status AdmitIncoming(Message& message, const ListenerConfig& config, const ListenerHooks& hooks,
                     const Caller& caller, int64_t now_ms) {
  if (config.external) {
    message.Remove("shard");
    message.Remove("cache");
    Meta kept;
    kept.trace = std::move(message.meta().trace);
    kept.idempotency_key = std::move(message.meta().idempotency_key);  // the client's own
    message.meta() = std::move(kept);
  }
  // After stripping: what the node would act on is what is judged.
  if (Status allowed = Authorize(message, caller, config, hooks); !allowed.ok()) return allowed;
  int64_t latest = now_ms + config.request_timeout_ms;
  Meta& meta = message.meta();
  if (meta.deadline == 0 || meta.deadline > latest) meta.deadline = latest;
  return Status::Ok();
}

Message ReplyWire(Result<Message> result, const std::string& id) {
  Message wire = ToWire(std::move(result));
  wire.meta() = Meta{};
  wire.meta().id = id;
  return wire;
}

Status ReplyTooLarge(size_t bytes, size_t max_bytes) {
  return Status::Invalid(
      fmt::format("reply too large: {} bytes, over max_reply_bytes ({}); ask for less per request "
                  "(store:list: a smaller q.limit$, then follow each reply's cursor)",
                  bytes, max_bytes),
      fmt::format(R"({{"max_reply_bytes":{},"reply_bytes":{}}})", max_bytes, bytes));
}

void AppendReplyJson(Result<Message> result, const std::string& id, size_t max_bytes,
                     std::string& out) {
  const size_t start = out.size();
  AppendJson(ReplyWire(std::move(result), id), out);
  const size_t bytes = out.size() - start;
  if (bytes <= max_bytes) return;
  out.resize(start);
  out.shrink_to_fit();  // the oversized text is not kept in the connection's buffer
  AppendJson(ReplyWire(ReplyTooLarge(bytes, max_bytes), id), out);
}

void AppendReplyFrame(Result<Message> result, const std::string& id, size_t max_bytes,
                      std::string& out) {
  const size_t start = out.size();
  out.append(kFrameHeaderBytes, '\0');
  AppendReplyJson(std::move(result), id, max_bytes, out);
  WriteFrameLength(start, out);
}

int HttpStatusFor(const Status& status) {
  if (status.code() == Code::kInvalid) {
    if (status.details_json() == "{\"http_status\":401}") return 401;
    if (status.details_json() == "{\"http_status\":413}") return 413;
    if (status.details_json() == kForbiddenDetails) return 403;
  }
  // Indexed by Code. no_route is 503: nothing serves it here now, so the service is unavailable,
  // not the data.
  static constexpr std::array<int, 10> kHttpStatus = {
      200,  // ok
      404,  // not_found
      400,  // invalid
      409,  // conflict
      421,  // wrong_shard
      504,  // timeout
      503,  // overloaded
      502,  // unavailable
      500,  // internal
      503,  // no_route
  };
  static_assert(kHttpStatus.size() == static_cast<size_t>(Code::kNoRoute) + 1);
  auto index = static_cast<size_t>(status.code());
  return index < kHttpStatus.size() ? kHttpStatus[index] : 500;
}

Status Unauthorized() {
  return Status::Invalid("unauthorized: missing or wrong bearer token", "{\"http_status\":401}");
}

bool TokenMatches(std::string_view presented, std::string_view expected) {
  if (expected.empty()) return false;
  unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < presented.size(); ++i) {
    diff |= static_cast<unsigned char>(presented[i] ^ expected[i % expected.size()]);
  }
  return diff == 0;
}

int64_t CallBudgetMs(Message& message, int64_t timeout_ms, int64_t now_ms) {
  int64_t budget = timeout_ms;
  int64_t deadline = message.meta().deadline;
  if (deadline != 0 && deadline - now_ms < budget) budget = deadline - now_ms;
  if (budget > 0) message.meta().deadline = now_ms + budget;
  return budget;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace shardkit::services
