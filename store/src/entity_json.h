// JSON helpers for entities (RapidJSON, private to the store library): parsing with the checks
// the store promises, rendering stored entities and projections, and scalar equality.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include <shardkit/message/status.h>

namespace shardkit::store::internal {

// Parses `text` (full-precision doubles, validated UTF-8) into `doc`; invalid naming `field` if
// malformed.
Status ParseJson(std::string_view text, std::string_view field, rapidjson::Document& doc);
// ParseJson, and the value must be an object.
Status ParseObject(std::string_view text, std::string_view field, rapidjson::Document& doc);

// The member `name` of an object, or nullptr.
const rapidjson::Value* FindMember(const rapidjson::Value& object, std::string_view name);

bool IsScalar(const rapidjson::Value& v);
// Scalar equality; numbers by value (1 == 1.0, exact for integers).
bool ScalarEquals(const rapidjson::Value& a, const rapidjson::Value& b);

std::string Compact(const rapidjson::Value& v);

// {"id":id,"version":version, ...every other member of `object`}; `expected_bytes`, the length of
// `object`'s text if known, sizes the buffer once.
std::string RenderStored(const rapidjson::Value& object, std::string_view id, uint64_t version,
                         size_t expected_bytes = 0);
// {"id":…,"version":…, …the members of `object` named in `fields`} (fields not present skipped).
std::string Project(const rapidjson::Value& object, const std::vector<std::string>& fields);

}  // namespace shardkit::store::internal
