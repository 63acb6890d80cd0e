// The byte form of a change record in an ordered backend's "changes" column family (RocksDB):
//   op(1) ksid(8) version(8) expires_at_ms(8) |kind|(8) kind |id|(8) id json    (big-endian)
// The sequence is the record's key, not part of the value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <shardkit/store/change_feed.h>

namespace shardkit::store::internal {

std::string EncodeChange(const ChangeRecord& record);
// Appends EncodeChange(record) without the json to `out`: a writer passes the json as a slice of
// its own, so the entity's bytes are copied once, into the write batch.
void AppendChangeHeader(const ChangeRecord& record, std::string& out);
// nullopt for anything EncodeChange cannot have written: too short, a length past the end, an
// unknown op. The caller reports it as a corrupt record.
std::optional<ChangeRecord> DecodeChange(uint64_t sequence, std::string_view in);

}  // namespace shardkit::store::internal
