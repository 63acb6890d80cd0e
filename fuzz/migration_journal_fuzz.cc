// The migration journal as read back from disk (ParseJournal, what ReadJournal does with the
// file's text). A corrupt journal must be a clear `internal` error naming the file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "check.h"
#include "journal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto state = shardkit::migrate::internal::ParseJournal(text, "/var/lib/node/journal.json");
  if (!state.ok()) {
    FUZZ_CHECK(state.status().code() == shardkit::Code::kInternal);
    FUZZ_CHECK(state.status().message().find("/var/lib/node/journal.json") != std::string::npos);
  }
  return 0;
}
