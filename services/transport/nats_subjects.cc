// The NATS links' subjects, reply inboxes and batch framing (nats_link.h, docs/cluster.md).
#include <fmt/format.h>

#include "nats_link.h"

namespace shardkit::services {

// The number `text` starts with (0 when none); `digits` gets how many characters it took.
uint64_t LeadingNumber(std::string_view text, size_t* digits) {
  uint64_t n = 0;
  size_t i = 0;
  for (; i < text.size() && i < 19 && text[i] >= '0' && text[i] <= '9'; ++i)
    n = n * 10 + static_cast<uint64_t>(text[i] - '0');
  if (digits != nullptr) *digits = i;
  return n;
}

std::string EscapeSubjectToken(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 0x7f || c == '.' || c == '*' || c == '>' || c == '~') {
      out += fmt::format("~{:02x}", u);
    } else {
      out += c;
    }
  }
  if (out.empty()) out = "~";
  return out;
}

std::string PatternSubject(std::string_view canonical_pattern) {
  return "shardkit.p." + EscapeSubjectToken(canonical_pattern);
}

std::string InfoSubject(std::string_view info_value) {
  return "shardkit.info." + EscapeSubjectToken(info_value);
}

std::string AnswerSubject(std::string_view reply) {
  if (reply.size() > kReplyMark.size() && reply.ends_with(kReplyMark)) {
    std::string answer(reply.substr(0, reply.size() - kReplyMark.size()));
    answer += kAnswerMark;
    return answer;
  }
  return std::string(reply);
}

std::string_view InboxPrefix(std::string_view reply) {
  if (!reply.ends_with(kReplyMark)) return {};
  std::string_view head = reply.substr(0, reply.size() - kReplyMark.size());
  size_t dot = head.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == head.size()) return {};
  return head.substr(0, dot + 1);
}

bool IsBatch(std::string_view payload) { return payload.starts_with(kBatchMagic); }

void AppendBatchItem(std::string& batch, uint64_t n, std::string_view body) {
  fmt::format_to(std::back_inserter(batch), "{} {}\n", n, body.size());
  batch.append(body);
}

Status ParseBatch(std::string_view payload, std::vector<BatchItem>& items) {
  size_t at = kBatchMagic.size();
  auto number = [&](char end, uint64_t& value) {
    size_t digits = 0;
    value = LeadingNumber(payload.substr(at), &digits);
    at += digits;
    if (digits == 0 || at >= payload.size() || payload[at] != end) return false;
    ++at;
    return true;
  };
  while (at < payload.size()) {
    size_t item_at = at;
    BatchItem item;
    uint64_t length = 0;
    if (!number(' ', item.n) || !number('\n', length) || length > payload.size() - at)
      return Status::Invalid(fmt::format(
          "batch: item at byte {}: expected \"<n> <length>\\n\" and that many bytes", item_at));
    item.body = payload.substr(at, length);
    at += length;
    items.push_back(item);
  }
  return Status::Ok();
}

Status NatsError(natsStatus status, std::string_view what) {
  std::string text = natsStatus_GetText(status);
  natsStatus ignored;
  const char* last = nats_GetLastError(&ignored);
  if (last != nullptr && *last != '\0' && text.find(last) == std::string::npos)
    text += fmt::format(" ({})", last);
  std::string message = fmt::format("{}: {}", what, text);
  switch (status) {
    case NATS_TIMEOUT:
      return Status::Timeout(std::move(message));
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_NO_RESPONDERS:
    case NATS_IO_ERROR:
    case NATS_NOT_YET_CONNECTED:
      return Status::Unavailable(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

}  // namespace shardkit::services
