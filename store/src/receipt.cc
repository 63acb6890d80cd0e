#include "receipt.h"

#include <xxhash.h>

#include "key_codec.h"
#include "validation.h"

namespace shardkit::store::internal {
namespace {

void AppendSized(std::string& out, std::string_view text) {
  AppendBigEndian64(out, text.size());
  out.append(text);
}

// Reads |text|(8) text from the front of `in`; nullopt when `in` is too short.
std::optional<std::string> TakeSized(std::string_view& in) {
  if (in.size() < 8) return std::nullopt;
  const uint64_t size = ReadBigEndian64(in);
  in.remove_prefix(8);
  if (in.size() < size) return std::nullopt;
  std::string text(in.substr(0, size));
  in.remove_prefix(size);
  return text;
}

// Fields joined with a separator that cannot occur in them unescaped: each is length-prefixed.
class FingerprintBuilder {
 public:
  explicit FingerprintBuilder(std::string_view op) { Add(op); }
  FingerprintBuilder& Add(std::string_view field) {
    AppendSized(bytes_, field);
    return *this;
  }
  FingerprintBuilder& Add(uint64_t value) {
    AppendBigEndian64(bytes_, value);
    return *this;
  }
  uint64_t Done() const { return XXH3_64bits(bytes_.data(), bytes_.size()); }

 private:
  std::string bytes_;
};

constexpr std::string_view kKeyField = R"({"field":"meta$.idempotency_key"})";

}  // namespace

std::string EncodeReceipt(const Receipt& receipt) {
  std::string out;
  AppendBigEndian64(out, receipt.fingerprint);
  AppendBigEndian64(out, static_cast<uint64_t>(receipt.expires_at_ms));
  AppendBigEndian64(out, receipt.answers.size());
  for (const Result<std::string>& answer : receipt.answers) {
    if (answer.ok()) {
      out.push_back(0);
      AppendSized(out, *answer);
      AppendSized(out, {});
    } else {
      out.push_back(static_cast<char>(answer.status().code()));
      AppendSized(out, answer.status().message());
      AppendSized(out, answer.status().details_json());
    }
  }
  return out;
}

std::optional<Receipt> DecodeReceipt(std::string_view in) {
  if (in.size() < 24) return std::nullopt;
  Receipt receipt;
  receipt.fingerprint = ReadBigEndian64(in);
  receipt.expires_at_ms = static_cast<int64_t>(ReadBigEndian64(in.substr(8)));
  const uint64_t count = ReadBigEndian64(in.substr(16));
  in.remove_prefix(24);
  for (uint64_t i = 0; i < count; ++i) {
    if (in.empty()) return std::nullopt;
    const auto code = static_cast<Code>(static_cast<unsigned char>(in[0]));
    in.remove_prefix(1);
    std::optional<std::string> text = TakeSized(in);
    if (!text) return std::nullopt;
    std::optional<std::string> details = TakeSized(in);
    if (!details) return std::nullopt;
    if (code == Code::kOk) {
      receipt.answers.emplace_back(std::move(*text));
    } else {
      receipt.answers.emplace_back(Status(code, std::move(*text), std::move(*details)));
    }
  }
  return receipt;
}

uint64_t FingerprintSaves(std::span<const SaveRequest> requests) {
  FingerprintBuilder f("save");
  for (const SaveRequest& r : requests) {
    f.Add(r.kind).Add(r.id).Add(r.ent);
    f.Add(r.expected_version ? *r.expected_version + 1 : 0);
    f.Add(r.insert_only ? 1 : 0);
    f.Add(r.ttl_seconds ? static_cast<uint64_t>(*r.ttl_seconds) : 0);
  }
  return f.Done();
}

uint64_t FingerprintRemove(std::string_view kind, std::string_view id) {
  return FingerprintBuilder("remove").Add(kind).Add(id).Done();
}

uint64_t FingerprintClaim(std::string_view request) {
  return FingerprintBuilder("claim").Add(request).Done();
}

uint64_t FingerprintRemoveWhere(const Query& query) {
  FingerprintBuilder f("remove_where");
  f.Add(query.kind);
  for (const Filter& filter : query.filters) f.Add(filter.field).Add(filter.value_json);
  f.Add(query.sort_field).Add(query.sort_direction);
  f.Add(query.limit ? static_cast<uint64_t>(*query.limit) + 1 : 0);
  f.Add(static_cast<uint64_t>(query.skip)).Add(query.cursor);
  return f.Done();
}

Status KeyReusedError(std::string_view key) {
  return Status::Conflict(
      "meta$.idempotency_key: '" + std::string(key) + "' was already used for a different request",
      std::string(kKeyField));
}

bool IsIdempotencyKeyError(const Status& status) {
  return !status.ok() && status.details_json() == kKeyField;
}

Status CheckIdempotencyKey(std::string_view key) {
  if (key.size() > kMaxIdempotencyKeyBytes) {
    return Status::InvalidField(
        "meta$.idempotency_key",
        "must be at most " + std::to_string(kMaxIdempotencyKeyBytes) + " bytes");
  }
  return Status::Ok();
}

}  // namespace shardkit::store::internal
