// Idempotency receipts (entity_store.h, docs/store.md): what a keyed write records with its data
// and how a later copy of the write is recognised.
//
// Body layout (opaque to the backends):
//   fingerprint(8, BE) expires_at_ms(8) count(8) then per answer: code(1) |text|(8) text
//   |details|(8) details
// code 0 (ok): text is the stored JSON the write answered; else text and details are the error.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/status.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/query.h>

namespace shardkit::store::internal {

struct Receipt {
  uint64_t fingerprint = 0;
  int64_t expires_at_ms = 0;
  std::vector<Result<std::string>> answers;
};

std::string EncodeReceipt(const Receipt& receipt);
std::optional<Receipt> DecodeReceipt(std::string_view body);

// Fingerprints of the requests a key may name: equal requests (the same bytes resent) give equal
// fingerprints; a different operation, kind, id, entity or option gives another.
uint64_t FingerprintSaves(std::span<const SaveRequest> requests);
uint64_t FingerprintRemove(std::string_view kind, std::string_view id);
uint64_t FingerprintClaim(std::string_view request);
uint64_t FingerprintRemoveWhere(const Query& query);

// `conflict` for a key whose receipt is of another request.
Status KeyReusedError(std::string_view key);
// Whether `status` is about the key itself (overlong, reused): the request's error, not an item's.
bool IsIdempotencyKeyError(const Status& status);
// `invalid` unless the key is at most kMaxKeyBytes bytes.
inline constexpr size_t kMaxIdempotencyKeyBytes = 256;
Status CheckIdempotencyKey(std::string_view key);

}  // namespace shardkit::store::internal
