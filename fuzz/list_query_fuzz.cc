// The list query as a node serves it: `store:list` with the fuzzed text as its `q` (filters,
// sort$, limit$, skip$, fields$, cursor$) on a memory store holding a few entities of varied
// field types. An input with a NUL byte is split there: before it the `q`, after it the body of a
// cursor, made valid (fingerprint of that query, checksum) so that the cursor's decoder is
// reached past its checksum. Property: every reply, page or error, is valid JSON.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <xxhash.h>

#include <shardkit/message/codec.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/service.h>

#include "check.h"
#include "key_codec.h"
#include "list_query.h"

namespace store = shardkit::store;

namespace {

constexpr const char* kEntities[] = {
    R"({"id":"a","n":1,"s":"x","b":true,"z":null,"o":{"k":1},"l":[1,2]})",
    R"({"id":"b","n":2.5,"s":"y","b":false})",
    R"({"id":"c","n":-7,"s":"","o":[]})",
    R"({"id":"d","s":"\u00e9t\u00e9","n":1e300})",
    R"({"id":"e","n":"1","s":2})",
};

std::shared_ptr<store::EntityStore> Store() {
  static std::shared_ptr<store::EntityStore> s = [] {
    std::shared_ptr<store::EntityStore> opened = store::NewMemoryStore({}).value();
    for (const char* ent : kEntities) {
      store::SaveRequest request;
      request.kind = "entry";
      request.ent = ent;
      FUZZ_CHECK(opened->Save(request).ok());
    }
    return opened;
  }();
  return s;
}

// A cursor with `body` after its version and fingerprint, and a correct checksum.
std::string ValidCursor(uint64_t fingerprint, std::string_view body) {
  std::string raw(1, 'c');
  store::internal::AppendBigEndian64(raw, fingerprint);
  raw.append(body);
  store::internal::AppendBigEndian64(raw, XXH64(raw.data(), raw.size(), 0));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return hex;
}

void CheckJson(const shardkit::Result<shardkit::Message>& reply) {
  const std::string json =
      shardkit::ToJson(reply.ok() ? *reply : shardkit::ErrorMessage(reply.status()));
  FUZZ_CHECK(shardkit::ParseMessage(json).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 8192) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  auto message = shardkit::ParseMessage(R"({"store":"list","kind":"entry","q":)" +
                                        std::string(input.substr(0, nul)) + "}");
  if (!message.ok()) return 0;
  if (nul == std::string_view::npos) {
    auto service = store::MakeStoreService(Store());
    shardkit::Result<shardkit::Message> reply = shardkit::Status::Internal("no reply");
    service->Handle(std::move(message).value(), shardkit::Context(nullptr, nullptr, {}),
                    [&](shardkit::Result<shardkit::Message> r) { reply = std::move(r); });
    FUZZ_CHECK(reply.ok() || reply.status().message() != "no reply");
    CheckJson(reply);
    return 0;
  }
  auto query = store::QueryFromMessage(*message);
  if (!query.ok()) return 0;
  auto plan = store::internal::PlanQuery(*query);
  if (!plan.ok()) return 0;
  query->cursor = ValidCursor(plan->fingerprint, input.substr(nul + 1));
  auto page = Store()->List(*query);
  if (!page.ok()) {
    FUZZ_CHECK(page.status().code() == shardkit::Code::kInvalid);
    CheckJson(page.status());
  }
  return 0;
}
