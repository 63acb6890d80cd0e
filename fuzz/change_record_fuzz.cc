// The change-feed record decoder (a record's value in RocksDB's "changes" column family). A
// corrupt record must be refused (the feed reports "corrupt change record"), never read past its
// end; a record it accepts must encode back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "change_codec.h"
#include "check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto record = shardkit::store::internal::DecodeChange(42, bytes);
  if (!record) return 0;
  FUZZ_CHECK(record->sequence == 42);
  FUZZ_CHECK(shardkit::store::internal::EncodeChange(*record) == bytes);
  return 0;
}
