#include "entity_json.h"

#include <algorithm>
#include <cmath>

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <shardkit/message/json.h>

#include "validation.h"

namespace shardkit::store::internal {
namespace {

constexpr unsigned kParseFlags =
    rapidjson::kParseFullPrecisionFlag | rapidjson::kParseValidateEncodingFlag;

std::string_view NameOf(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

bool IsIntegral(const rapidjson::Value& v) { return v.IsInt64() || v.IsUint64(); }

}  // namespace

Status CheckKind(std::string_view kind) {
  if (kind.empty()) return Status::InvalidField("kind", "must not be empty");
  if (kind.find('\0') != std::string_view::npos)
    return Status::InvalidField("kind", "must not contain NUL");
  return Status::Ok();
}

Status CheckId(std::string_view id, std::string_view field) {
  if (id.empty()) return Status::InvalidField(field, "must not be empty");
  if (id.find('\0') != std::string_view::npos)
    return Status::InvalidField(field, "must not contain NUL");
  return Status::Ok();
}

Status ParseJson(std::string_view text, std::string_view field, rapidjson::Document& doc) {
  doc.Parse<kParseFlags>(text.data(), text.size());
  if (doc.HasParseError()) {
    return Status::InvalidField(
        field, std::string("malformed JSON (") + rapidjson::GetParseError_En(doc.GetParseError()) +
                   " at offset " + std::to_string(doc.GetErrorOffset()) + ")");
  }
  return Status::Ok();
}

Status ParseObject(std::string_view text, std::string_view field, rapidjson::Document& doc) {
  if (Status s = ParseJson(text, field, doc); !s.ok()) return s;
  if (!doc.IsObject()) return Status::InvalidField(field, "must be a JSON object");
  return Status::Ok();
}

const rapidjson::Value* FindMember(const rapidjson::Value& object, std::string_view name) {
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    if (NameOf(it->name) == name) return &it->value;
  }
  return nullptr;
}

bool IsScalar(const rapidjson::Value& v) { return !v.IsObject() && !v.IsArray(); }

bool ScalarEquals(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (IsIntegral(a) && IsIntegral(b)) {
      if (a.IsUint64() != b.IsUint64()) return false;  // one is negative or above INT64_MAX
      return a.IsUint64() ? a.GetUint64() == b.GetUint64() : a.GetInt64() == b.GetInt64();
    }
    return a.GetDouble() == b.GetDouble();
  }
  if (a.GetType() != b.GetType()) return false;
  if (a.IsString()) return NameOf(a) == NameOf(b);
  return a.IsNull() || a.IsTrue() || a.IsFalse();  // same type: null, true, false are equal
}

std::string Compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  v.Accept(w);
  return WrittenJson(out);
}

namespace {

template <typename Keep>
std::string RenderWith(const rapidjson::Value& object, std::string_view id, uint64_t version,
                       Keep keep, size_t expected_bytes = 0) {
  // Room for the text, the id and the version, and for the writer's reserve before a string
  // (six bytes a character, the longest escape): a usual entity's buffer is not grown.
  constexpr size_t kIdAndVersion = 40, kMostReserved = 64 * 1024;
  const size_t room = expected_bytes + id.size() + kIdAndVersion +
                      std::min(6 * (expected_bytes + id.size()), kMostReserved);
  // One allocator for the buffer and the writer's stack: each would make its own otherwise.
  rapidjson::CrtAllocator heap;
  rapidjson::StringBuffer out(&heap,
                              std::max(size_t{rapidjson::StringBuffer::kDefaultCapacity}, room));
  rapidjson::Writer<rapidjson::StringBuffer> w(out, &heap);
  w.StartObject();
  w.Key("id");
  w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
  w.Key("version");
  w.Uint64(version);
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    std::string_view name = NameOf(it->name);
    if (name == "id" || name == "version" || !keep(name)) continue;
    w.Key(it->name.GetString(), it->name.GetStringLength());
    it->value.Accept(w);
  }
  w.EndObject();
  return WrittenJson(out);
}

}  // namespace

std::string RenderStored(const rapidjson::Value& object, std::string_view id, uint64_t version,
                         size_t expected_bytes) {
  return RenderWith(
      object, id, version, [](std::string_view) { return true; }, expected_bytes);
}

std::string Project(const rapidjson::Value& object, const std::vector<std::string>& fields) {
  const rapidjson::Value* id = FindMember(object, "id");
  const rapidjson::Value* version = FindMember(object, "version");
  std::string_view id_text = id != nullptr && id->IsString() ? NameOf(*id) : std::string_view();
  uint64_t version_number = version != nullptr && version->IsUint64() ? version->GetUint64() : 0;
  return RenderWith(object, id_text, version_number, [&](std::string_view name) {
    for (const std::string& f : fields) {
      if (f == name) return true;
    }
    return false;
  });
}

}  // namespace shardkit::store::internal
