// SortValue: a field value reduced to what List needs to order by it and to carry it in a cursor.
// Order: missing < null < false < true < numbers < strings < arrays/objects (all equal).
// Integers compare exactly (as 128-bit), any other number pair as doubles.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace shardkit::store::internal {

struct SortValue {
  enum Rank : uint8_t { kMissing, kNull, kFalse, kTrue, kNumber, kString, kComposite };
  Rank rank = kMissing;
  bool is_integer = false;
  __int128 integer = 0;
  double number = 0;
  std::string text;

  // nullptr: the field is missing.
  static SortValue From(const rapidjson::Value* v);

  // Appends a self-delimiting binary form; Decode reads it back, advancing `in`.
  void Encode(std::string& out) const;
  static std::optional<SortValue> Decode(std::string_view& in);
};

// <0, 0, >0.
int Compare(const SortValue& a, const SortValue& b);

}  // namespace shardkit::store::internal
